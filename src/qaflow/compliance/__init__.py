"""Timescale compliance from the events: met, missed and still open, per team and timescale.

:func:`instances` replays workflows and lists every deadline instance with its outcome;
:func:`compliance` counts them for a date range per team and timescale (an instance counts
in the range it was settled in, or as open when it is still open at the range's end);
:func:`as_of` answers "which deadlines were open, and which overdue, on that day";
:func:`report_rows` is the QA report's section. Everything is worked out from the stored
events alone (replayed through the engine), so the view is the same on any store and for
any past date.
"""

from __future__ import annotations

from qaflow.compliance._view import (
    Instance,
    Outcome,
    TimescaleCompliance,
    as_of,
    compliance,
    instances,
    report_rows,
)

__all__ = [
    "Instance",
    "Outcome",
    "TimescaleCompliance",
    "as_of",
    "compliance",
    "instances",
    "report_rows",
]
