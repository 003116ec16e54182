"""Escalations in an audit programme: who raises them, about whom, and who holds each role.

Each month every case on a child protection plan (its CP chair), every case in care (its
IRO) and every foster carer (a fostering IRO) may see an escalation raised on the ladder of
that kind, with the knobs' ``escalation_rate``; the stage holders are the people the
council's directory names for the case. The escalation is then played by the same
:class:`~qaflow.sim._escalation.EscalationActors` as :func:`~qaflow.simulate.simulate_escalations`,
with the knobs' ``escalation`` behaviour.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import partial

from qaflow.calendar import LONDON
from qaflow.machines.escalation import escalation_machine, machine_name
from qaflow.policies.base import Policy
from qaflow.policies.ladders import EscalationLadder
from qaflow.records import Actor, Step
from qaflow.sim._council import CouncilCase
from qaflow.sim._escalation import Escalation, EscalationActors
from qaflow.sim._run import Run
from qaflow.spec import MachineSpec

__all__ = ["EXTERNAL_ID", "EscalationPlay", "ladder_specs"]

EXTERNAL_ID = "EXT-CAFCASS"
"""The opaque id of the external body a ladder refers to (its ``cafcass`` role)."""


def ladder_specs(
    ladders: tuple[EscalationLadder, ...], policy: Policy, specs: list[MachineSpec]
) -> dict[str, tuple[EscalationLadder, MachineSpec]]:
    """Kind -> (ladder, spec) for the kinds a programme raises, reusing a spec in ``specs``
    with the same key and appending any it has to build (the engine must know it)."""
    found: dict[str, tuple[EscalationLadder, MachineSpec]] = {}
    for ladder in ladders:
        if ladder.kind not in ("cp_chair", "iro", "firo") or ladder.kind in found:
            continue
        key = (machine_name(ladder), policy.name, policy.version)
        spec = next((s for s in specs if s.key == key), None)
        if spec is None:
            spec = escalation_machine(ladder, policy)
            specs.append(spec)
        found[ladder.kind] = (ladder, spec)
    return found


def _month_of(moment: datetime) -> tuple[date, date]:
    """The first and last local dates of ``moment``'s month in London."""
    first = moment.astimezone(LONDON).date().replace(day=1)
    index = first.year * 12 + first.month
    nxt = date(index // 12, index % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


class EscalationPlay:
    """The escalations of a programme run (see the module docstring)."""

    def __init__(self, run: Run, ladders: dict[str, tuple[EscalationLadder, MachineSpec]]) -> None:
        self.run = run
        self.open: set[tuple[str, str]] = set()
        self.raised = 0
        self.actors: dict[str, EscalationActors] = {}
        for kind, (ladder, spec) in ladders.items():
            actors = EscalationActors(
                ladder,
                spec,
                run.behaviour.escalation,
                engine=run.engine,
                scheduler=run.scheduler,
                rng=run.rng,
                on_end=partial(self.ended, kind),
                observe=self.observe,
                tick=_no_tick,  # the run ticks before every action, at due moments too
            )
            self.actors[kind] = actors
            run.followers.append(actors.on_tick)

    def observe(self, step: Step) -> None:
        self.run.after(step)
        if step.event.seq == 1:
            self.run.count("escalations_raised")

    def ended(self, kind: str, esc: Escalation, step: Step) -> None:
        del step
        self.run.count("escalations_closed")
        self.open.discard((kind, esc.subject))

    def raise_escalations(self, month: str, when: datetime) -> None:
        """Each CP case, case in care and foster carer may see an escalation this month."""
        run = self.run
        council = run.council
        rng = run.rng
        first, last = _month_of(when)
        days = run.calendar.working_dates(first, last)
        subjects: list[tuple[str, str, CouncilCase | None]] = []
        for case in council.cases:
            if case.status == "cp":
                subjects.append(("cp_chair", case.child_id, case))
            elif case.status == "cla":
                subjects.append(("iro", case.child_id, case))
        subjects += [("firo", fc, None) for fc in council.foster_carers]
        raisers = {"cp_chair": council.cp_chairs, "iro": council.iros, "firo": council.firos}
        numbers: dict[str, int] = {}
        rate = run.behaviour.escalation_rate
        for kind, subject, about in subjects:
            if (kind, subject) in self.open or rng.random() >= rate:
                continue
            actors = self.actors.get(kind)
            if actors is None:
                continue
            ladder = actors.ladder
            numbers[kind] = numbers.get(kind, 0) + 1
            wid = f"{run.prefix}ESC-{kind.upper().replace('_', '')}-{month}-{numbers[kind]:03d}"
            raiser = Actor(rng.choice(raisers[kind]), ladder.raiser)
            people = self.people(ladder, about)
            at = run.local(rng.choice(days), time(rng.randint(9, 16), rng.randrange(0, 60, 5)))
            self.open.add((kind, subject))
            self.raised += 1
            actors.begin(Escalation(self.raised, wid, raiser, subject, people), max(at, when))

    def people(self, ladder: EscalationLadder, case: CouncilCase | None) -> dict[str, str]:
        """Who holds each role the ladder notifies, for this case or foster carer."""
        council = self.run.council
        directory = council.directory
        if case is not None:
            worker = case.worker_id
            found: dict[str, str] = {"social_worker": worker}
        else:
            worker = self.run.rng.choice(council.supervising_social_workers)
            found = {
                "supervising_social_worker": worker,
                "fostering_manager": council.fostering_manager,
            }
        found.update(
            {k.removesuffix("_id"): v for k, v in directory.management_chain(worker).items()}
        )
        found.update(
            assistant_director=council.assistant_director,
            director=council.director,
            cafcass=EXTERNAL_ID,
        )
        return {role: found[role] for role in ladder.assignable_roles if role in found}


def _no_tick(when: datetime) -> None:
    del when
