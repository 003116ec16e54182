"""Council policies as data: one module per council, each citing the clauses it encodes.

The types the council modules are written in: :mod:`~qaflow.policies.base` (a policy's
name, version and calendar), :mod:`~qaflow.policies.forms` (audit forms, grade bands),
:mod:`~qaflow.policies.audits` (audit and moderation rules) and
:mod:`~qaflow.policies.ladders` (escalation ladders). The councils:
:mod:`~qaflow.policies.bexley` (BX, seed 000) and :mod:`~qaflow.policies.buckinghamshire`
(BK, seed 002); :mod:`~qaflow.policies.clauses` is the catalogue of their clauses. Nothing
here imports a machine: ``qaflow.machines`` builds from these.
"""

from qaflow.policies.base import Policy

__all__ = ["Policy"]
