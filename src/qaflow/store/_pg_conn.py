"""How :class:`PostgresStore` keeps psycopg's prepared statements and the server's in step.

psycopg prepares a statement on the server once it has run it ``prepare_threshold`` times on
a connection, and remembers the name. In pipeline mode it records the name when it *queues*
the statement's Parse, and when that is the statement's first prepared use after being
counted it never checks the Parse's result. When an earlier statement of the same pipeline
fails on the server (a deadlock, a serialisation failure, a lock timeout, a unique
violation), the server skips everything up to the pipeline's sync, that Parse included, yet
psycopg goes on naming the statement: its next use fails with ``prepared statement "_pg3_N"
does not exist``. This is what desynchronised the cache under concurrent writers.

So every pipeline the store runs goes through :func:`pipelined`, which after any server
error makes psycopg forget every statement it prepared on the connection and drop them on
the server (``DEALLOCATE ALL``, which psycopg sends after the connection's next statement,
as it does itself after rolling back a transaction block). :func:`forget_prepared` is also
the cure when a statement was deallocated behind psycopg's back (by a pooler or an admin).
:func:`write_once` is a command's pipelined transaction (or savepoint) itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from qaflow.errors import StoreError
from qaflow.records import Step
from qaflow.store._pg_sql import NESTED, SEAL, TOP, Refused, open_states, refusal, write_step

if TYPE_CHECKING:
    import psycopg

__all__ = ["LostStatement", "forget_prepared", "lost_typed", "pipelined", "write_once"]


def forget_prepared(conn: psycopg.Connection[Any]) -> None:
    """Forget every statement prepared on ``conn``, on both sides.

    psycopg has no public call for this; its prepared-statement manager's ``clear`` is what
    its own transaction rollback uses (it empties the cache and queues ``DEALLOCATE ALL``).
    tests/test_pg_prepared.py fails if a psycopg release changes that.
    """
    conn._prepared.clear()


@contextmanager
def pipelined(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """``conn.pipeline()``, after which psycopg and the server agree on what is prepared
    even when a statement in it failed (see the module's docstring).

    Only a step refused on its version or key (:class:`Refused`, read from a pipeline that
    ran to its end) keeps the cache: anything else may have cut the pipeline short.
    """
    try:
        with conn.pipeline():
            yield
    except BaseException as error:
        if not isinstance(error, Refused):
            forget_prepared(conn)
        raise


@contextmanager
def lost_typed(conn: psycopg.Connection[Any], where: str) -> Iterator[None]:
    """A statement the server lost escaping a read or a transaction is a typed, retryable
    :class:`~qaflow.errors.StoreError`; the connection forgets its prepared statements first,
    so the retry runs on agreeing caches."""
    from psycopg import errors

    try:
        yield
    except errors.InvalidSqlStatementName:
        forget_prepared(conn)
        raise LostStatement(
            path=where,
            problem="had lost a prepared statement of this session (deallocated outside "
            "qaflow); nothing was written: retry",
        ) from None


class LostStatement(StoreError):
    """The server had lost a statement psycopg had prepared; the caches now agree, so the
    transaction, which wrote nothing, can run again (``commit_many`` and ``fire_due`` do,
    once)."""

    retryable = True


def write_once(
    conn: psycopg.Connection[Any], step: Step, expected_version: int, nested: bool
) -> None:
    """``PostgresStore.commit``'s transaction (a savepoint when ``nested``), undone on any error."""
    from psycopg import errors

    wid = step.event.workflow_id
    begin, done, undo = NESTED if nested else TOP
    try:
        with pipelined(conn):
            conn.execute(begin)
            write_step(conn, step, expected_version)
            conn.execute(done)
            if not nested:  # chain it (and others) into the anchor, same round trip
                conn.execute(SEAL, (False,))
    except BaseException as error:
        if conn.info.transaction_status in open_states():
            for statement in undo:
                conn.execute(statement)
        if isinstance(error, Refused):
            raise refusal(conn, wid, expected_version, error.key_used) from None
        if isinstance(error, errors.IntegrityError):
            raise refusal(conn, wid, expected_version, False) from None
        raise
