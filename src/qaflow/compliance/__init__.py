"""Timescale compliance from the events: met, missed and still open, per team and timescale.

:func:`instances` replays workflows and lists every deadline instance with its outcome;
:func:`compliance` counts them for a date range (an instance counts in the range it falls due
in) per team and timescale; :func:`as_of` answers "which deadlines were open, and which
overdue, on that day". Everything is worked out from the stored events alone (replayed
through the engine), so the view is the same on any store and for any past date.
"""

from __future__ import annotations

from qaflow.compliance._view import (
    Instance,
    Outcome,
    TimescaleCompliance,
    as_of,
    compliance,
    instances,
)

__all__ = [
    "Instance",
    "Outcome",
    "TimescaleCompliance",
    "as_of",
    "compliance",
    "instances",
]
