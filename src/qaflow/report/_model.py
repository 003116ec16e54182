"""The records the report's templates read: tables, figures, sections, key messages, targets.

Plain frozen records, so a council's own template can rely on their fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

QAFLOW_DEFAULT: Final = "qaflow default"
"""The ``source`` of a target no policy clause sets."""


@attrs.frozen
class Target:
    """A figure's target: the share at or above which it is green (amber within ``amber``).

    ``source`` is the clause that sets the target, or :data:`QAFLOW_DEFAULT` when the
    council's procedure states a timescale but no share to meet.
    """

    measure: str
    minimum: float
    amber: float = 0.10
    source: str = QAFLOW_DEFAULT


TARGET_KEYS: Final = ("follow_ups", "urgent_tasks")
"""The measures a target can be set for."""

DEFAULT_TARGETS: Final[Mapping[str, Target]] = {
    "follow_ups": Target("Follow-ups on time", 0.90),
    "urgent_tasks": Target("24 hour tasks on time", 0.90),
}
"""Targets used when neither the caller nor the policies give any: qaflow's defaults."""


@attrs.frozen
class Table:
    """A table: its caption, header, rows (the first cell of a row heads it) and, when it is a
    chart's alternative, that chart's id."""

    caption: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    chart: str | None = None


@attrs.frozen
class Figure:
    """A chart (inline SVG) with its caption and its table alternative."""

    chart_id: str
    svg: str
    caption: str
    table: Table


@attrs.frozen
class Block:
    """One piece of a section: a paragraph, a table or a figure."""

    kind: str
    text: str = ""
    table: Table | None = None
    figure: Figure | None = None


@attrs.frozen
class Section:
    """A headed part of the report; ``level`` 2 or 3."""

    id: str
    title: str
    level: int
    blocks: tuple[Block, ...]


@attrs.frozen
class Message:
    """A key message; ``rag`` is "Green", "Amber", "Red" or empty."""

    text: str
    rag: str = ""


@attrs.frozen
class ReportView:
    """Everything a template needs."""

    title: str
    period: str
    about: str
    messages: tuple[Message, ...]
    targets: Table | None
    comparison: Table | None
    sections: tuple[Section, ...]
    notes: tuple[str, ...]
