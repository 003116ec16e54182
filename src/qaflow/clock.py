"""Injected time: the engine, ``tick`` and simulation read a :class:`Clock`, never the OS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from qaflow.calendar import ensure_aware
from qaflow.errors import ValidationError

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Anything with ``now()`` returning an aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told: for tests and simulation. Never goes backwards."""

    __slots__ = ("_now",)

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start, "start").astimezone(UTC)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> datetime:
        """Move to ``moment`` (not earlier than now)."""
        if type(moment) is not datetime or moment.tzinfo is not UTC:  # else already UTC
            moment = ensure_aware(moment, "moment").astimezone(UTC)
        if moment < self._now:
            raise ValidationError(
                field="moment",
                value=moment.isoformat(),
                expected=f"not earlier than the clock ({self._now.isoformat()})",
            )
        self._now = moment
        return moment

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValidationError(field="delta", value=str(step), expected="not negative")
        self._now += step
        return self._now
