"""Store URLs: ``sqlite:///path.db``, a bare file path, or ``postgresql://…``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qaflow.errors import ValidationError

__all__ = ["open_store", "shown_url"]

MISSING_DATABASE = "an existing qaflow database"
_EXPECTED = "sqlite:///PATH, postgresql://USER@HOST/DB (or a libpq DSN) or a file path"


def is_url(text: str) -> bool:
    """Whether ``text`` names a store by URL or DSN rather than by a bare file path."""
    return "://" in text or ("=" in text and ("dbname=" in text or "host=" in text))


def open_store(url: str, *, create: bool = True, field: str = "url", readonly: bool = False) -> Any:
    """Open the store ``url`` names (writes: a new database gets qaflow's schema).

    ``sqlite:///rel.db`` and ``sqlite:////abs.db`` (or a bare path) open a :class:`SQLiteStore`;
    ``postgresql://`` or ``postgres://`` URLs and libpq ``key=value`` DSNs open a
    :class:`PostgresStore`. With ``create=False`` a SQLite file that does not exist is refused
    rather than created. ``readonly=True`` opens either store without writing anything (an
    existing, current qaflow database only; writes raise :class:`~qaflow.errors.StoreError`).
    ``field`` names the option in error messages (e.g. ``--db``).
    """
    from qaflow.store._postgres import PostgresStore
    from qaflow.store._sqlite import SQLiteStore

    if not isinstance(url, str) or not url.strip():
        raise ValidationError(field=field, value=url, expected=_EXPECTED)
    scheme, sep, rest = url.partition("://")
    if (sep and scheme in ("postgresql", "postgres")) or (not sep and is_url(url)):
        return PostgresStore(url, readonly=readonly)
    if sep and scheme != "sqlite":
        raise ValidationError(field=field, value=scheme + "://", expected=_EXPECTED)
    path = rest[1:] if sep else url
    if sep and (not rest.startswith("/") or not path):
        raise ValidationError(field=field, value=url, expected=_EXPECTED)
    if path != ":memory:":
        target = Path(path)
        if target.is_dir():
            raise ValidationError(field=field, value=path, expected="a database file, not a folder")
        if (readonly or not create) and not target.exists():
            raise ValidationError(field=field, value=path, expected=MISSING_DATABASE)
    return SQLiteStore(path, readonly=readonly)


def shown_url(url: str) -> str:
    """``url`` as it may be printed: a PostgreSQL URL or DSN without its password."""
    if not is_url(url) or url.startswith("sqlite:"):
        return url
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        parts = conninfo_to_dict(url)
    except Exception:  # malformed: show nothing of it
        return "an unparsable DSN"
    if "password" not in parts:
        return url
    parts.pop("password")
    return make_conninfo(**{k: str(v) for k, v in parts.items()})
