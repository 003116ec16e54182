"""Values a procedure file holds that its council's framework does not give: qaflow defaults.

Where a seed is silent (a moderation sample size, who hears of a missed deadline, a pairing
window) a shipped file still needs a value. Each such value is marked in the file, in a
``[[defaults]]`` entry naming it by key path, the clause it fills in, and why qaflow chose it::

    [[defaults]]
    value = "moderation.sample.share"
    fills = "BX-MOD-01"
    why = "the framework gives no sample size: one in ten"

The reader checks that the path names a value the file holds (a mark on nothing is an
error), and ``qaflow policy docs`` lists every mark under "Defaults to confirm", for the
council's policy owner to confirm or change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from qaflow.procedure._reader import Node

__all__ = ["QaflowDefault", "read_defaults"]

_STEP: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")


@attrs.frozen
class QaflowDefault:
    """One value a file holds that its framework does not give."""

    path: str
    """Where the value is, as a key path (``moderation.sample.share``, ``bands[3]``)."""
    value: Any
    fills: str | None
    """The clause whose gap it fills, or None where no clause speaks to it."""
    why: str


def _lookup(doc: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """The value at ``path`` in the parsed file, if there is one."""
    here: Any = doc
    for part in path.split("."):
        match = _STEP.fullmatch(part)
        if match is None or not isinstance(here, Mapping) or match.group(1) not in here:
            return False, None
        here = here[match.group(1)]
        if match.group(2) is not None:
            index = int(match.group(2))
            if not isinstance(here, list) or index >= len(here):
                return False, None
            here = here[index]
    return True, here


def read_defaults(root: Node) -> tuple[QaflowDefault, ...]:
    """The file's ``[[defaults]]`` marks, each naming a value the file holds."""
    out: list[QaflowDefault] = []
    for node in root.tables("defaults", required=False):
        path, why = node.text("value"), node.text("why")
        fills = node.text("fills", default=None)
        node.finish()
        if path is None or why is None:
            continue
        found, value = _lookup(root.data, path)
        if not found or path.startswith("defaults"):
            node.problem("value", "the key path of a value this file holds", path)
            continue
        out.append(QaflowDefault(path, value, fills, why))
    return tuple(out)
