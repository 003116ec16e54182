"""Shared pieces of the command line: the console, clean errors, dates and the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console

from qaflow.errors import QAFlowError, ValidationError

F = TypeVar("F", bound=Callable[..., Any])

console = Console(highlight=False)


def fail_cleanly(func: F) -> F:
    """Turn a qaflow error into one clear line and exit status 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QAFlowError as error:
            raise click.ClickException(f"{type(error).__name__}: {error}") from None

    return wrapper  # type: ignore[return-value]


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            field="--now", value=text, expected="an ISO 8601 datetime with a UTC offset"
        ) from None
    if moment.tzinfo is None:
        raise ValidationError(
            field="--now", value=text, expected="an ISO 8601 datetime with a UTC offset"
        )
    return moment


@contextmanager
def open_engine(db: str) -> Iterator[Any]:
    """An engine with the shipped machines on the store ``db`` names (a file or a URL)."""
    from qaflow.engine import Engine
    from qaflow.registry import shipped_specs
    from qaflow.store import open_store

    store = open_store(db, create=False, field="--db")
    try:
        yield Engine(store, shipped_specs())
    finally:
        store.close()


DB_OPTION = click.option(
    "--db",
    default="qaflow.db",
    show_default=True,
    help="The database: a SQLite file, sqlite:///PATH or postgresql://USER@HOST/DB.",
)
