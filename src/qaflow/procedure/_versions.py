"""The procedure file format's version, and one migration per older version.

Every procedure file states ``format_version``. A file of an older version is migrated step
by step to the current one before it is read (each step a pure function on the parsed data),
so a council's file keeps loading after the format grows; a newer version than this qaflow
knows is refused with the versions it can read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from qaflow.errors import PolicyError

__all__ = ["FORMAT_VERSION", "MIGRATIONS", "migrate"]

FORMAT_VERSION: Final = 1
"""The format version this qaflow writes and reads natively."""

Migration = Callable[[dict[str, Any]], dict[str, Any]]

MIGRATIONS: Final[dict[int, Migration]] = {}
"""``MIGRATIONS[n]`` turns a version-``n`` document into a version ``n + 1`` one."""


def migrate(doc: dict[str, Any], *, source: str) -> dict[str, Any]:
    """The document brought to :data:`FORMAT_VERSION` (``format_version`` removed)."""
    version = doc.get("format_version")
    expected = f"an integer from 1 to {FORMAT_VERSION}"
    if isinstance(version, bool) or not isinstance(version, int):
        raise PolicyError(source=source, path="format_version", value=version, expected=expected)
    if not 1 <= version <= FORMAT_VERSION:
        raise PolicyError(source=source, path="format_version", value=version, expected=expected)
    data = {k: v for k, v in doc.items() if k != "format_version"}
    for step in range(version, FORMAT_VERSION):
        data = MIGRATIONS[step](data)
    return data
