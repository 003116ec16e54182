"""A council's audit programme, simulated month by month on the real engine and policies.

:func:`generate_council` makes up a council: services, teams, managers, practitioners, their
cases (each a child in need, on a child protection plan or in care), foster carers, CP
chairs, IROs, fostering IROs, PSQA and business support, all as opaque ids (``"T01"``,
``"P017"``, ``"C0042"``), with an :class:`~qaflow.directory.InMemoryDirectory` that says who
holds which role. :func:`run_programme` then plays an audit programme for it:

* on the first working day of each month business support allocates one audit to each
  manager (team and service managers, BX-AUD-13) with
  :func:`~qaflow.allocation.allocate_audits` (never a case of the auditor's own team,
  BX-AUD-01), and every audit is driven through the real audit machine: the self-assessment,
  the health check and meeting answers, a grade drawn from ``grades``, family feedback or
  the reason it could not be had, the agreed actions, completion and follow-up; a share is
  cancelled on the way;
* PSQA draws the moderation sample with :func:`~qaflow.machines.moderation.sample_audits`
  from the audits completed so far, allocates moderators and moderates: the moderator agrees
  or regrades, meets the auditor and agrees a grade, which is written back to the audit;
* CP chairs, IROs and fostering IROs raise escalations about a share of the cases and foster
  carers, on the ladders given (default: the ones the catalogue in :mod:`qaflow.policies`
  ships for the council, else the first it ships), and the same actors as
  :mod:`qaflow.simulate` play them: stage holders respond, ask for more time or let the
  deadline pass while the raiser accepts, escalates, bypasses, withdraws or refers;
* the tasks the machines open (24 h tasks after an Inadequate grade, agreed actions, ...)
  are completed through the store's outbox API, mostly on time;
* :meth:`~qaflow.engine.Engine.tick` runs before every action and at the end of the period,
  so deadlines breach when a slow auditor or stage holder misses them, exactly as they
  would in production.

Every command goes through :class:`~qaflow.engine.Engine` (with the council's directory,
so every actor must hold the role it acts in): nothing here models a rule of its own. Time
is a :class:`~qaflow.clock.ManualClock` that only moves forward; actions run in time order
(ties in the order they were planned) and one :class:`random.Random` seeded with ``seed``
draws everything, so the same council, arguments and seed write identical store content.
The period is ``months`` calendar months from ``start`` (Europe/London); actions that would
fall after it are not played, so audits allocated late in the last month are still open at
its end, as they would be in a real quarter.

Every knob is a field of :class:`~qaflow.sim.ProgrammeBehaviour`. The play lives in
:mod:`qaflow.sim` (one scheduler and one set of escalation actors, shared with
:mod:`qaflow.simulate`); this module is the public entry point.
"""

from types import MappingProxyType
from typing import Final

from qaflow.procedure import Grade
from qaflow.sim import ProgrammeBehaviour
from qaflow.sim._council import CaseStatus, Council, CouncilCase, generate_council
from qaflow.sim._programme import ProgrammeResult, period_bounds, run_programme

__all__ = [
    "DEFAULT_GRADES",
    "CaseStatus",
    "Council",
    "CouncilCase",
    "ProgrammeBehaviour",
    "ProgrammeResult",
    "generate_council",
    "period_bounds",
    "run_programme",
]

DEFAULT_GRADES: Final[MappingProxyType[Grade, float]] = MappingProxyType(
    ProgrammeBehaviour().grades
)
"""The default grade distribution: :attr:`ProgrammeBehaviour.grades` (grades a policy's form
cannot give are dropped)."""
