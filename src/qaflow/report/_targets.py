"""Reading a council's report targets file (``policies/<council>/report.toml``).

The file sets, per measure, the share at or above which the report shows it Green and the
margin below that is Amber, and says where the target comes from: a clause of the council's
procedure, or ``"qaflow default"`` when the procedure states a timescale but no share to meet::

    [targets.follow_ups]
    measure = "Follow-ups on time"
    minimum = 0.90
    amber = 0.10
    source = "qaflow default"

It is read by the procedure files' reader (:mod:`qaflow.procedure._reader`): every problem is
reported at once in one :class:`~qaflow.errors.PolicyError` naming the file and key path
(``targets.follow_ups.minimum``), unknown keys refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from qaflow.procedure._reader import Node, Problems, parse_toml
from qaflow.report._model import QAFLOW_DEFAULT, TARGET_KEYS, Target

__all__ = ["load_targets"]

_CLAUSE: Final = re.compile(r"^[A-Z]{2,}(-[A-Z]+)+-\d{2,}$")


def _share(node: Node, key: str, *, required: bool = True) -> float | None:
    expected = "a share from 0 to 1 (0.9 is 90%)"
    if required:
        value = node.get(key, (int, float), expected=expected)
    else:
        value = node.get(key, (int, float), expected=expected, default=0.10)
    if value is None:
        return None
    if not 0 <= value <= 1:
        node.problem(key, expected, value)
        return None
    return float(value)


def _target(node: Node) -> Target | None:
    measure = node.text("measure")
    minimum = _share(node, "minimum")
    amber = _share(node, "amber", required=False)
    source = node.text("source")
    if isinstance(source, str) and source != QAFLOW_DEFAULT and not _CLAUSE.match(source):
        node.problem("source", f"a clause id like 'BX-AUD-09' or {QAFLOW_DEFAULT!r}", source)
        source = None
    node.finish()
    if measure is None or minimum is None or amber is None or source is None:
        return None
    return Target(measure, minimum, amber, source)


def load_targets(path: str | Path, *, text: str | None = None) -> dict[str, Target]:
    """The targets of a report file (``text`` if given, else the file's contents).

    Raises :class:`~qaflow.errors.PolicyError` naming ``path`` and the key path of every
    problem: a measure qaflow has no figure for, a share outside 0..1, a missing ``source``.
    """
    source = str(path)
    problems = Problems(source)
    raw = parse_toml(Path(path).read_text("utf-8") if text is None else text, source=source)
    root = Node(raw, problems)
    table = root.table("targets")
    root.finish()
    found: dict[str, Target] = {}
    if table is not None:
        for key in table.data:
            if key not in TARGET_KEYS:
                table.has(key)
                table.problem(key, f"a measure with a figure (one of {', '.join(TARGET_KEYS)})")
                continue
            node = table.table(key)
            target = None if node is None else _target(node)
            if target is not None:
                found[key] = target
    problems.raise_if_any()
    return found
