"""Shared pieces of the command line: the console, clean errors, dates and the engine.

Everything printed that came from a database or an argument goes through :func:`plain`
(control characters, bidirectional overrides and lone surrogates shown as escapes) and, on
the rich console, :func:`safe` (also rich markup escaped), so stored text can neither move
the cursor, recolour the terminal nor break a table.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from qaflow.calendar import LONDON
from qaflow.errors import QAFlowError, StoreError, ValidationError

F = TypeVar("F", bound=Callable[..., Any])

DB_ENV = "QAFLOW_DB"
"""The environment variable every ``--db`` option reads when ``--db`` is not given."""
DEMO_DB = "qaflow-demo/qaflow-demo.db"
"""Where ``qaflow demo`` writes its database by default (named in the missing-database hint)."""
_PIPED_WIDTH = 1000


class _Console(Console):
    """A rich console that, when its output is not a terminal, is wide enough for any table.

    Rich otherwise falls back to 80 columns (or to the width of a terminal on stdin) when
    stdout is a pipe, and cuts cells to ``response_o…``. ``COLUMNS``, when set, still wins.
    Decided at each print, so it follows wherever stdout points then.
    """

    @property
    def size(self) -> ConsoleDimensions:
        measured = super().size
        if not self.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
            return ConsoleDimensions(_PIPED_WIDTH, measured.height)
        return measured

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console(highlight=False)

_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def plain(text: object) -> str:
    """``text`` with every control, format or unpaired-surrogate character as an escape."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _UNSAFE else ch
        for ch in value
    )


def safe(text: object) -> str:
    """:func:`plain`, with rich markup escaped too: for the rich console and its tables."""
    return escape(plain(text))


def fail_cleanly(func: F) -> F:
    """Turn a qaflow error (or a file that cannot be written) into one line and status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QAFlowError as error:
            raise click.ClickException(plain(f"{type(error).__name__}: {error}")) from None
        except OSError as error:
            where = f" {error.filename!r}" if getattr(error, "filename", None) else ""
            raise click.ClickException(
                plain(f"cannot use{where}: {error.strerror or type(error).__name__}")
            ) from None

    return wrapper  # type: ignore[return-value]


NOW_FORMATS = "a date (2026-04-15), a local time (2026-04-15T09:00) or a time with an offset"


def parse_now(text: str | None) -> datetime:
    """``--now`` as an aware datetime: as the report reads dates, without an offset it is
    Europe/London time, and a date alone is the start of that day in London."""
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(field="--now", value=text, expected=NOW_FORMATS, quote=True) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=LONDON)
    return moment


def local_time(moment: datetime) -> str:
    """A stored (UTC) moment as Europe/London wall time with its offset: ``2026-06-30 23:59
    +01:00``, so a deadline at the end of a BST day reads as the day it falls on."""
    local = moment.astimezone(LONDON)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def output_file(option: str, path: str) -> Path:
    """A file to write: its folder must exist and it must not be a folder itself."""
    target = Path(path)
    if target.is_dir():
        raise ValidationError(field=option, value=path, expected="a file, not a folder", quote=True)
    if not target.parent.is_dir():
        raise ValidationError(
            field=option, value=path, expected="a file in an existing folder", quote=True
        )
    return target


@contextmanager
def open_engine(db: str, *, write: bool = False, ladders: tuple[str, ...] = ()) -> Iterator[Any]:
    """An engine on ``db`` (a SQLite file or a store URL) with the shipped specs and any
    ``ladders`` files registered.

    Read commands open the database read-only (``write=False``): a SQLite file that is not
    a qaflow database is refused and left exactly as it was; a PostgreSQL database must
    already hold qaflow's current schema and its sessions are read-only on the server. Write
    commands on a PostgreSQL URL create the schema if it is new.
    """
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.store import SQLiteStore, open_store
    from qaflow.store._url import is_url

    specs = [*shipped_specs(), *_ladder_specs(ladders)]
    if is_url(db) and not db.startswith("sqlite:"):
        store = open_store(db, field=_db_source(), readonly=not write)
    else:
        if db.startswith("sqlite:///") and len(db) > len("sqlite:///"):
            db = db[len("sqlite:///") :]
        elif db.startswith("sqlite:"):
            raise ValidationError(field=_db_source(), value=db, expected="sqlite:///PATH")
        path = Path(db)
        if not path.exists():
            raise ValidationError(
                field=_db_source(), value=db, expected=_missing_db_hint(), quote=True
            )
        if path.is_file() and path.stat().st_size == 0:
            raise StoreError(path=db, problem="is empty: not a qaflow database")
        store = SQLiteStore(db, readonly=not write)
    try:
        yield Engine(store, specs)
    finally:
        store.close()


def _ladder_specs(files: tuple[str, ...]) -> list[Any]:
    from qaflow.machines.escalation import escalation_machine
    from qaflow.policies.ladders import load_ladders

    specs: list[Any] = []
    for name in files:
        if not Path(name).is_file():
            raise ValidationError(
                field="--ladders", value=name, expected="an existing TOML file", quote=True
            )
        book = load_ladders(name)
        specs.extend(escalation_machine(ladder, book.policy) for ladder in book.ladders)
    return specs


LADDERS_OPTION = click.option(
    "--ladders",
    multiple=True,
    metavar="FILE",
    help="A council's ladders TOML file whose machines the database uses (repeatable).",
)


def _db_source() -> str:
    """Which name the user gave the database by: ``--db`` or the environment variable."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.get_parameter_source("db") is ParameterSource.ENVIRONMENT:
        return DB_ENV
    return "--db"


def _missing_db_hint() -> str:
    where = (
        f"the demo's is {DEMO_DB} here"
        if Path(DEMO_DB).exists()
        else f"`qaflow demo` writes {DEMO_DB}"
    )
    return f"an existing qaflow database ({where}; give --db PATH or set {DB_ENV}=PATH)"


DB_OPTION = click.option(
    "--db",
    default="qaflow.db",
    show_default=True,
    envvar=DB_ENV,
    show_envvar=True,
    help=f"The database: a SQLite file, sqlite:///PATH or postgresql://USER@HOST/DB (or set "
    f"{DB_ENV}).",
)
