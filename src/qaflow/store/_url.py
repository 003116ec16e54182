"""Store URLs: ``sqlite:///path.db``, a bare file path, or ``postgresql://…``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qaflow.errors import ValidationError

__all__ = ["open_store"]

MISSING_DATABASE = "an existing qaflow database"
_EXPECTED = "sqlite:///PATH, postgresql://USER@HOST/DB (or a libpq DSN) or a file path"


def is_url(text: str) -> bool:
    """Whether ``text`` names a store by URL or DSN rather than by a bare file path."""
    return "://" in text or ("=" in text and ("dbname=" in text or "host=" in text))


def open_store(url: str, *, create: bool = True, field: str = "url") -> Any:
    """Open the store ``url`` names (writes: a new database gets qaflow's schema).

    ``sqlite:///rel.db`` and ``sqlite:////abs.db`` (or a bare path) open a :class:`SQLiteStore`;
    ``postgresql://`` or ``postgres://`` URLs and libpq ``key=value`` DSNs open a
    :class:`PostgresStore`. With ``create=False`` a SQLite file that does not exist is refused
    rather than created. ``field`` names the option in error messages (e.g. ``--db``).
    """
    from qaflow.store._postgres import PostgresStore
    from qaflow.store._sqlite import SQLiteStore

    if not isinstance(url, str) or not url.strip():
        raise ValidationError(field=field, value=url, expected=_EXPECTED)
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return PostgresStore(url)
    if not sep and is_url(url):
        return PostgresStore(url)
    if sep and scheme != "sqlite":
        raise ValidationError(field=field, value=scheme + "://", expected=_EXPECTED)
    path = rest[1:] if sep else url
    if sep and (not rest.startswith("/") or not path):
        raise ValidationError(field=field, value=url, expected=_EXPECTED)
    if path != ":memory:":
        target = Path(path)
        if target.is_dir():
            raise ValidationError(field=field, value=path, expected="a database file, not a folder")
        if not create and not target.exists():
            raise ValidationError(field=field, value=path, expected=MISSING_DATABASE)
    return SQLiteStore(path)
