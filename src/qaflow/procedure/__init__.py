"""The procedure file format: how a council writes its procedures as data, with no code.

This package holds the format-neutral model of a council's procedures and the thin readers
that turn a file into it; it imports nothing from the machines, the engine or the stores.
Readers report every problem in a file at once, each naming the file and the key path.

Escalation ladders (:class:`EscalationLadder`) are read from a procedure file by
:func:`load_procedure`; :func:`json_schema` is the file format's published JSON Schema,
generated from the same definitions the reader walks. A parallel track (a Cafcass referral
made alongside the council's own stages) is modelled *inside* the escalation's own workflow:
a ``refer`` command records it and notifies the external party while the stages go on. A
linked child workflow would need cross-workflow commands the engine does not have, and the
referral has no procedure of its own in the council's hands to drive; the escalation record
is where the report and the simulation look for it.
"""

from __future__ import annotations

from qaflow.procedure._format import json_schema
from qaflow.procedure._ladder import (
    IRO_DISPUTE_RESOLUTION,
    STATUTORY,
    AgreedTimescale,
    EscalationLadder,
    ExtensionRule,
    ExternalReferral,
    LadderStage,
    Notice,
    PartyDeadline,
    ReferralTrack,
)
from qaflow.procedure._reader import IDENT, Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._toml import ProcedureFile, load_procedure, loads_procedure
from qaflow.procedure._versions import FORMAT_VERSION, migrate

__all__ = [
    "FORMAT_VERSION",
    "IDENT",
    "IRO_DISPUTE_RESOLUTION",
    "STATUTORY",
    "AgreedTimescale",
    "EscalationLadder",
    "ExtensionRule",
    "ExternalReferral",
    "LadderStage",
    "Node",
    "Notice",
    "PartyDeadline",
    "Problems",
    "ProcedureFile",
    "ReferralTrack",
    "did_you_mean",
    "json_schema",
    "load_procedure",
    "loads_procedure",
    "migrate",
    "parse_toml",
]
