"""Helpers for the timescale machine tests: an engine on one shipped spec, and who fires."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from qaflow import Actor, Engine, ManualClock, MemoryStore
from qaflow.calendar import Duration
from qaflow.spec import MachineSpec

WORKER = Actor("SW-1", "social_worker")
MANAGER = Actor("TM-1", "team_manager")
SUPERVISOR = Actor("SV-1", "supervisor")
QA_LEAD = Actor("QA-1", "qa_lead")
INDEPENDENT = Actor("RHI-1", "independent_worker")


class Run:
    """One workflow of ``spec`` on a fresh in-memory engine, driven event by event."""

    def __init__(self, spec: MachineSpec, start: datetime, wid: str = "W-1") -> None:
        self.spec = spec
        self.clock = ManualClock(start)
        self.engine = Engine(MemoryStore(), [spec], clock=self.clock)
        self.wid = wid

    @property
    def now(self) -> datetime:
        return self.clock.now()

    def start(self, trigger: str, actor: Actor, payload: dict[str, Any]) -> None:
        self.engine.start(self.spec.name, self.wid, trigger, actor, payload)

    def fire(self, trigger: str, actor: Actor = WORKER, **payload: Any) -> None:
        self.engine.fire(self.wid, trigger, actor, payload)

    def wait(self, **kwargs: float) -> datetime:
        return self.clock.advance(timedelta(**kwargs))

    def tick(self, moment: datetime) -> None:
        """Move the clock to ``moment`` (if later) and tick there."""
        self.clock.set(max(moment, self.now))
        self.engine.tick(moment)

    def due(self, name: str) -> datetime | None:
        """The due time of the open instance called ``name`` (``None``: none is open)."""
        found = [d for d in self.engine.get(self.wid).deadlines if d.name == name]
        assert len(found) <= 1, f"I15: {len(found)} open instances of {name!r}"
        return found[0].due_at if found else None

    def after(self, length: str, start: datetime | None = None) -> datetime:
        """``length`` after ``start`` (default: now) on the spec's calendar."""
        return Duration.parse(length).after(start or self.now, self.spec.calendar)

    def missed(self) -> list[str]:
        return [
            e.payload["deadline"]
            for e in self.engine.history(self.wid)
            if e.trigger == "deadline_missed"
        ]
