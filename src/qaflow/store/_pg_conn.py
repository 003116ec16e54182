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

The server failing under a command (a lock or statement timeout, a cancel, a connection it
dropped or refused) becomes a typed error (:func:`server_typed`). A connection lost *after*
a command's ``COMMIT`` was sent leaves its outcome in doubt (:class:`InDoubt`): the store
then asks a fresh session whether the command's event is stored, once the lost session is
over on the server (:meth:`Recovery.stored`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from qaflow.errors import ConcurrencyError, OutcomeUnknown, StoreBusy, StoreError, StoreUnavailable
from qaflow.records import Event, Step
from qaflow.store._pg_sql import (
    NESTED,
    SEAL,
    TOP,
    Refused,
    open_states,
    refusal,
    text_id,
    write_step,
)

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = [
    "InDoubt",
    "LostStatement",
    "Recovery",
    "commit_on",
    "dropped",
    "forget_prepared",
    "in_doubt",
    "lost_typed",
    "pipelined",
    "read_again",
    "refused_for_now",
    "server_typed",
    "typed_on",
    "unreachable",
    "write_once",
    "write_settled",
]

R = TypeVar("R")

_GONE = {
    "57P01": "ended the session (an administrator, or a shutdown)",
    "57P02": "ended the session (a crash shutdown)",
    "57P03": "is not accepting connections now (starting up or shutting down)",
    "53300": "refused the connection: too many connections",
}
"""SQLSTATEs of a session the server ended or refused, and what each means."""

REFILL_WAIT = 1.0
"""Seconds a recovering store waits for its pool to reconnect before it opens a new one."""

SETTLE_WAIT = 5.0
"""Seconds to wait for a lost session to end on the server before its commit is in doubt."""


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


def stored_here(conn: psycopg.Connection[Any], step: Step) -> bool:
    """Whether ``step``'s event is stored, asked on ``conn`` (alive, out of its transaction)."""
    from psycopg.pq import TransactionStatus

    if conn.info.transaction_status != TransactionStatus.IDLE:
        return False
    event = step.event
    row = conn.execute(
        "SELECT hash FROM events WHERE workflow_id = %s AND seq = %s",
        (event.workflow_id, event.seq),
    ).fetchone()
    return row is not None and row[0] == event.hash


def write_once(
    conn: psycopg.Connection[Any], step: Step, expected_version: int, nested: bool
) -> None:
    """``PostgresStore.commit``'s transaction (a savepoint when ``nested``), undone on any error."""
    from psycopg import errors

    wid = step.event.workflow_id
    begin, done, undo = NESTED if nested else TOP
    committing = False
    pid = conn.info.backend_pid
    try:
        with pipelined(conn):
            conn.execute(begin)
            write_step(conn, step, expected_version)
            committing = not nested  # a top-level COMMIT goes out from here on
            conn.execute(done)
            if not nested:  # chain it (and others) into the anchor, same round trip
                conn.execute(SEAL, (False,))
    except BaseException as error:
        if committing:
            try:
                found = not conn.closed and stored_here(conn, step)
            except Exception:  # the connection failed while being asked
                found = None
            if found is None or conn.closed:
                raise InDoubt(pid) from error
            if found:
                return  # committed; only the seal after it failed (a later seal takes its rows)
        if conn.closed:
            raise
        if conn.info.transaction_status in open_states():
            for statement in undo:
                conn.execute(statement)
        if isinstance(error, Refused):
            raise refusal(conn, wid, expected_version, error.key_used) from None
        if isinstance(error, errors.IntegrityError):
            raise refusal(conn, wid, expected_version, False) from None
        raise


def dropped(conn: psycopg.Connection[Any] | None, error: BaseException) -> bool:
    """Whether ``error`` is the connection lost or refused, not a statement failing."""
    import psycopg

    if not isinstance(error, psycopg.Error):
        return False
    if getattr(error, "sqlstate", None) in _GONE:
        return True
    if conn is not None and conn.closed:
        return True
    return isinstance(error, psycopg.OperationalError) and error.sqlstate is None


_REFUSALS = (
    "too many connections",
    "too many clients",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
)
"""What a server refusing a new session for now says (libpq reports no SQLSTATE for a
failed connection, only the server's text; a server whose messages are translated is then
reported as unreachable)."""


def refused_for_now(error: BaseException) -> bool:
    """Whether a failed connection was the server refusing it for now (too many connections,
    starting up or shutting down), not a wrong address, database or role."""
    text = str(error)
    return any(phrase in text for phrase in _REFUSALS)


def _why(error: BaseException) -> str:
    """What the server did, by SQLSTATE (never psycopg's text, which may quote values)."""
    return _GONE.get(str(getattr(error, "sqlstate", None)), "closed the connection")


def server_typed(
    error: BaseException,
    where: str,
    conn: psycopg.Connection[Any] | None = None,
    recovery: Recovery | None = None,
) -> StoreError | None:
    """The typed error for a server or pool failure under a command, or ``None``.

    Each holds only before the command's commit was sent (after it, see :class:`InDoubt`):
    the server then rolled the transaction back, so nothing was written. A closed pool is
    the store closed, or (``recovery`` not closed) a pool just replaced: retry.
    """
    from psycopg import errors
    from psycopg_pool import PoolClosed, PoolTimeout

    if isinstance(error, errors.ReadOnlySqlTransaction):
        return StoreError(path=where, problem="is open read-only: it cannot be written")
    if isinstance(error, errors.LockNotAvailable):
        return StoreBusy(
            path=where,
            problem="waited past lock_timeout for a lock another session holds; "
            "nothing was written: retry",
        )
    if isinstance(error, errors.QueryCanceled):
        return StoreBusy(
            path=where,
            problem="cancelled a statement (statement_timeout, or a cancel request); "
            "nothing was written: retry",
        )
    if isinstance(error, PoolTimeout):
        return StoreUnavailable(
            path=where,
            problem="gave no connection within the pool's timeout (the server is down, "
            "restarting or refusing connections); nothing was written: retry",
        )
    if isinstance(error, PoolClosed):
        if recovery is not None and not recovery.closed:
            return StoreUnavailable(
                path=where, problem="had just renewed its connections; nothing was written: retry"
            )
        return StoreError(path=where, problem="is closed: open the store again")
    if dropped(conn, error):
        return StoreUnavailable(
            path=where, problem=f"server {_why(error)}; nothing was written: retry"
        )
    return None


@contextmanager
def typed_on(
    where: str, conn: psycopg.Connection[Any] | None = None, recovery: Recovery | None = None
) -> Iterator[None]:
    """:func:`server_typed` around a block of reads or writes on ``conn``."""
    try:
        yield
    except Exception as error:
        typed = server_typed(error, where, conn, recovery)
        if typed is None:
            raise
        raise typed from None


class InDoubt(Exception):
    """The connection was lost after a command's ``COMMIT`` was sent (internal: the store
    settles it with :meth:`Recovery.stored`, or raises :class:`OutcomeUnknown`)."""

    def __init__(self, pid: int) -> None:
        super().__init__("commit in doubt")
        self.pid = pid


def in_doubt(where: str, then: str) -> OutcomeUnknown:
    return OutcomeUnknown(
        path=where,
        problem="lost the connection after the commit was sent, and could not find out "
        f"whether it was written (it was written in full or not at all): {then}",
    )


def write_settled(
    recovery: Recovery,
    where: str,
    write: Callable[[], R],
    event: Event | None,
    then: str,
) -> R | None:
    """``write()``, a transaction of its own, run once more when the first run certainly
    wrote nothing (a lost prepared statement, a connection dropped before the commit went
    out, or lost after it by a session the server has since ended without storing
    ``event``); ``None`` when the lost session had stored ``event`` (the transaction's
    last). Otherwise :class:`OutcomeUnknown` (``then`` says what to do)."""
    for attempt in (1, 2):
        try:
            return write()
        except LostStatement:
            if attempt == 2:
                raise
        except StoreUnavailable:
            if attempt == 2:
                raise
            if not recovery.recover():
                raise unreachable(where) from None
        except InDoubt as doubt:
            found = None if event is None else recovery.stored(doubt.pid, event)
            if found:
                return None
            if found is None or attempt == 2:
                raise in_doubt(where, then) from None
    raise AssertionError("unreachable")


class Recovery:
    """How a :class:`PostgresStore` gets sound connections back after the server dropped
    them, and asks it whether a commit in doubt was written. It owns the store's pool."""

    def __init__(
        self,
        make: Callable[[], psycopg_pool.ConnectionPool[psycopg.Connection[Any]]],
        dsn: str,
        kwargs: dict[str, Any],
    ) -> None:
        self.make, self.dsn, self.kwargs = make, dsn, kwargs
        self.pool = make()
        self.closed = False
        self._swap = threading.Lock()

    def close(self) -> None:
        self.closed = True
        self.pool.close()

    def recover(self) -> bool:
        """Drop the pool's dead idle connections (a restart kills them all, not only the
        one that failed); whether the server answers a new session now.

        A pool whose reconnections failed while the server was down waits out a back-off
        (1 s, doubling, up to minutes after a long outage) before it tries again, so a
        server back for a while may still get no connection from it: when the server
        answers but the pool has none to give within :data:`REFILL_WAIT`, a new pool
        replaces it (the old one is closed; its connections in use close when returned)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self.pool
        pool.check()
        try:
            psycopg.connect(self.dsn, connect_timeout=2, **self.kwargs).close()
        except psycopg.Error:
            return False
        try:
            with pool.connection(timeout=REFILL_WAIT):
                return True
        except PoolTimeout:
            pass
        with self._swap:
            if self.pool is pool and not self.closed:
                self.pool = self.make()
                pool.close(timeout=1)
        return True

    def stored(self, pid: int, event: Event) -> bool | None:
        """Whether ``event`` is stored (same hash), asked on a fresh connection once the lost
        session ``pid`` is over on the server (until then its commit may still be running);
        ``None`` when the server cannot say (unreachable, or the session outlived
        :data:`SETTLE_WAIT`)."""
        import psycopg
        from psycopg_pool import PoolTimeout

        if not self.recover():
            return None
        try:
            with self.pool.connection(timeout=SETTLE_WAIT) as conn:
                until = time.monotonic() + SETTLE_WAIT
                while conn.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone():
                    if time.monotonic() > until:
                        return None
                    time.sleep(0.01)  # a real server ending a real session
                row = conn.execute(
                    "SELECT hash FROM events WHERE workflow_id = %s AND seq = %s",
                    (event.workflow_id, event.seq),
                ).fetchone()
        except (psycopg.Error, PoolTimeout):
            return None
        return row is not None and row[0] == event.hash


def unreachable(where: str) -> StoreUnavailable:
    return StoreUnavailable(
        path=where,
        problem="server dropped the connection and is not reachable now (down or "
        "restarting); nothing was written: retry",
    )


def read_again(recovery: Recovery, where: str, read: Callable[[], R]) -> R:
    """``read()`` (or an idempotent write), once more on a sound connection when the server
    had dropped the one it ran on."""
    try:
        return read()
    except StoreUnavailable:
        if not recovery.recover():
            raise unreachable(where) from None
        return read()


def commit_on(
    conn: psycopg.Connection[Any], step: Step, expected_version: int, nested: bool
) -> None:
    """``PostgresStore.commit`` on ``conn``: :func:`write_once`, healing a statement the
    server had lost (deallocated outside qaflow: a failed pipeline no longer does it)."""
    from psycopg import errors

    wid = step.event.workflow_id
    try:
        write_once(conn, step, expected_version, nested)
    except errors.InvalidSqlStatementName:
        # Forget them all on both sides; the step's savepoint is already undone, and the
        # enclosing batch or claim is not ours to redo: a retryable conflict.
        forget_prepared(conn)
        if nested:
            raise ConcurrencyError(
                workflow_id=wid,
                expected_version=expected_version,
                actual_version=-1,
                detail="the server had lost a prepared statement; retry",
            ) from None
        # Write once more unless the failure came after the commit (only the seal), which
        # the stored hash tells.
        stored = conn.execute(
            "SELECT hash FROM events WHERE workflow_id = %s AND seq = %s",
            (text_id(wid), step.event.seq),
        ).fetchone()
        if stored is not None and stored[0] == step.event.hash:
            conn.execute(SEAL, (False,))
            return
        write_once(conn, step, expected_version, nested)
