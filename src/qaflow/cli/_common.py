"""Shared pieces of the command line: the console, clean errors, dates and the engine."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console, ConsoleDimensions

from qaflow.calendar import LONDON
from qaflow.errors import QAFlowError, ValidationError

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


def fail_cleanly(func: F) -> F:
    """Turn a qaflow error into one clear line and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QAFlowError as error:
            raise click.ClickException(f"{type(error).__name__}: {error}") from None

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
        raise ValidationError(field="--now", value=text, expected=NOW_FORMATS) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=LONDON)
    return moment


def local_time(moment: datetime) -> str:
    """A stored (UTC) moment as Europe/London wall time with its offset: ``2026-06-30 23:59
    +01:00``, so a deadline at the end of a BST day reads as the day it falls on."""
    local = moment.astimezone(LONDON)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


@contextmanager
def open_engine(db: str) -> Iterator[Any]:
    """An engine with the shipped machines on the store ``db`` names (a file or a URL)."""
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.store import open_store
    from qaflow.store._url import MISSING_DATABASE

    source = _db_source()
    try:
        store = open_store(db, create=False, field=source)
    except ValidationError as error:
        if error.expected == MISSING_DATABASE:  # a SQLite file that is not there
            raise ValidationError(field=source, value=db, expected=_missing_db_hint()) from None
        raise
    try:
        yield Engine(store, shipped_specs())
    finally:
        store.close()


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
