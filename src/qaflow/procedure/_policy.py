"""What every council policy has: a name and version that workflows pin, and its calendar.

Part of the procedure model (:mod:`qaflow.procedure`), which the procedure files are read into.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import attrs

from qaflow.calendar import WorkingCalendar, default_calendar

__all__ = ["Policy"]


def _dates(days: Iterable[date]) -> frozenset[date]:
    return frozenset(days)


def _roles(roles: Iterable[str]) -> tuple[str, ...]:
    return tuple(roles)


@attrs.frozen
class Policy:
    """A council's identity, which every workflow pins (name and version), and its own
    closure days (NAT-CAL-01)."""

    name: str
    version: str
    closure_days: frozenset[date] = attrs.field(default=frozenset(), converter=_dates)
    migration_roles: tuple[str, ...] = attrs.field(default=(), converter=_roles)
    """Who may move a workflow off this policy version (``Engine.migrate``); none if empty."""

    @property
    def calendar(self) -> WorkingCalendar:
        """England bank holidays plus this council's closure days (shared, cached)."""
        return default_calendar(self.closure_days)
