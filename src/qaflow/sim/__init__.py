"""Simulation on the real engine, machines and policies: one scheduler, one set of actors.

The escalation simulation (:mod:`qaflow.simulate`) and the audit programme
(:mod:`qaflow.programme`) both run on the :class:`Scheduler` here, and both play escalations
with the same actors, whose knobs are the validated records :class:`StageBehaviour`,
:class:`Behaviour` and :class:`ProgrammeBehaviour`. Nothing here names a council: shipped
policies are passed in, or come from the catalogue in :mod:`qaflow.policies`.
"""

from qaflow.sim._behaviour import Behaviour, ProgrammeBehaviour, StageBehaviour
from qaflow.sim._results import (
    OUTCOMES,
    EscalationPath,
    EscalationSimulation,
    EscalationSummary,
    Percentiles,
    format_summary,
    percentile,
)
from qaflow.sim._scheduler import Scheduler
from qaflow.sim._simulate import (
    CHUNK,
    DEFAULT_START,
    SIMULATION_POLICY,
    GcOption,
    simulate_escalations,
)
from qaflow.sim._tally import Tally

__all__ = [
    "CHUNK",
    "DEFAULT_START",
    "OUTCOMES",
    "SIMULATION_POLICY",
    "Behaviour",
    "EscalationPath",
    "EscalationSimulation",
    "EscalationSummary",
    "GcOption",
    "Percentiles",
    "ProgrammeBehaviour",
    "Scheduler",
    "StageBehaviour",
    "Tally",
    "format_summary",
    "percentile",
    "simulate_escalations",
]
