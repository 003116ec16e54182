"""Council policies as data: one module per council, each citing the clauses it encodes.

The types the council modules are written in: :mod:`~qaflow.policies.base` (a policy's
name, version and calendar), :mod:`~qaflow.policies.forms` (audit forms, grade bands),
:mod:`~qaflow.policies.audits` (audit and moderation rules) and
:mod:`~qaflow.policies.ladders` (escalation ladders). The councils:
:mod:`~qaflow.policies.bexley` (clause prefix BX) and :mod:`~qaflow.policies.buckinghamshire`
(BK); :mod:`~qaflow.policies.clauses` is the catalogue of their clauses. Nothing
here imports a machine: ``qaflow.machines`` builds from these.
"""

from qaflow.policies.base import Policy

__all__ = ["Policy"]
