"""The PostgreSQL store: one shared server, several nodes (its SQL is in ``_pg_sql``).

Every step commits in one transaction on a pooled connection. Optimistic concurrency is the
``WHERE version = …`` of the snapshot update (under READ COMMITTED a second writer waits for
the first and then finds the version moved); idempotency keys are a unique constraint per
workflow. ``tick`` claims due deadlines with ``FOR UPDATE SKIP LOCKED`` together with their
workflows' rows, so several nodes can tick at once and each breach fires exactly once; a
node that dies mid-claim releases its rows when the server ends its transaction.

psycopg is imported when a store is opened, so ``import qaflow`` stays fast for SQLite users.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from qaflow.calendar import ensure_aware
from qaflow.errors import StoreError, StoreUnavailable, UnknownWorkflow, ValidationError
from qaflow.records import (
    Deadline,
    Event,
    Step,
    WorkflowSnapshot,
)
from qaflow.store._find import Filters, FindWorkflows
from qaflow.store._pg_anchor import AnchorReads
from qaflow.store._pg_conn import (
    InDoubt,
    Recovery,
    commit_on,
    forget_prepared,
    lost_typed,
    pipelined,
    read_again,
    refused_for_now,
    server_typed,
    typed_on,
    write_settled,
)
from qaflow.store._pg_period import PeriodReads
from qaflow.store._pg_reads import RowReads
from qaflow.store._pg_sql import (
    CLAIM,
    Refused,
    conflicts_typed,
    create_schema,
    deadline_from,
    event_from,
    find_sql,
    refusal,
    session_options,
    snapshot_from,
    text_id,
    where_of,
    write_step,
)
from qaflow.store._pg_verify import VerifyReads
from qaflow.store._protocol import breach_each
from qaflow.store._rows import (
    EVENT_COLS,
    SNAP_COLS,
)

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["PostgresStore"]

R = TypeVar("R")

_RESEND = "read the workflow's version, or resend with the same idempotency key"


class PostgresStore(FindWorkflows, RowReads, PeriodReads, VerifyReads, AnchorReads):
    """A store on a PostgreSQL server, safe to share between threads, processes and nodes.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL. ``max_size`` bounds the
    connection pool (one connection per concurrently committing thread is enough). Opening
    creates or migrates the schema (serialised across nodes by an advisory lock); a database
    of a newer schema version raises :class:`~qaflow.errors.StoreError`.

    ``readonly=True`` never writes: the schema is only checked (an older or missing one is
    refused, not upgraded), every session is read-only on the server too, and each write
    method raises :class:`~qaflow.errors.StoreError` before sending anything.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 30.0,
        readonly: bool = False,
    ) -> None:
        import psycopg
        from psycopg_pool import ConnectionPool

        if not isinstance(dsn, str) or not dsn:
            raise ValidationError(field="dsn", value=dsn, expected="a PostgreSQL URL or DSN")
        self.dsn, self.where, self.readonly = dsn, where_of(dsn), bool(readonly)
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "options": session_options(dsn, readonly=self.readonly),
        }
        try:
            conn = psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), **kwargs)
            with conn, typed_on(self.where, conn):  # a timeout, the session ended: typed
                create_schema(conn, writable=not self.readonly)
        except psycopg.OperationalError as error:
            if refused_for_now(error):
                raise StoreUnavailable(
                    path=self.where,
                    problem="server refused the connection for now (too many connections, "
                    "or starting up or shutting down): retry",
                ) from None
            raise ValidationError(
                field="dsn", value=self.where, expected="a reachable PostgreSQL server"
            ) from None
        self._recovery = Recovery(
            lambda: ConnectionPool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                kwargs=kwargs,
                timeout=timeout,
                open=True,
            ),
            dsn,
            kwargs,
        )
        self._local = threading.local()
        try:
            self.seal(wait=True)  # rows a crashed node left pending
        except BaseException:
            self._recovery.close()  # no pool threads left behind by a store that did not open
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    @property
    def pool(self) -> psycopg_pool.ConnectionPool[psycopg.Connection[Any]]:
        """The connection pool (a new one once the server is back, if the old one stalled)."""
        return self._recovery.pool

    def close(self) -> None:
        self._recovery.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection of the batch or claim this thread is in, else one from the pool;
        a server or pool failure under it typed (see ``_pg_conn.server_typed``)."""
        conn = getattr(self._local, "conn", None)
        try:
            if conn is not None:
                with lost_typed(conn, self.where):
                    yield conn
                return
            with self.pool.connection() as conn, lost_typed(conn, self.where):
                yield conn
        except Exception as error:
            typed = server_typed(error, self.where, conn, self._recovery)
            if typed is None:
                raise
            raise typed from None

    def _held(self) -> bool:
        """Whether this thread is inside a batch or claim (its transaction is not ours)."""
        return getattr(self._local, "conn", None) is not None

    def _retrying(self, run: Callable[[], R]) -> R:
        """``run()`` (a read, or an idempotent write), once more on a sound connection when
        the server had dropped its own; inside a batch or claim, only once."""
        return run() if self._held() else read_again(self._recovery, self.where, run)

    def _writable(self, what: str) -> None:
        """Refuse a write on a store opened read-only, before anything reaches the server."""
        if self.readonly:
            raise StoreError(
                path=self.where, problem=f"is open read-only: {what} writes (open it for writing)"
            )

    @contextmanager
    def _hold(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction that this thread's reads and commits join until it ends."""
        if self._held():
            with self._conn() as conn, conn.transaction():
                yield conn
            return
        with typed_on(self.where, None, self._recovery), self.pool.connection() as conn:
            self._local.conn = conn
            pid, ended = conn.info.backend_pid, False
            try:
                with (
                    typed_on(self.where, conn),
                    lost_typed(conn, self.where),
                    conflicts_typed(),
                    conn.transaction(),
                ):
                    yield conn
                    ended = True  # the transaction's COMMIT goes out from here on
            except StoreUnavailable:
                if ended:
                    raise InDoubt(pid) from None
                raise
            finally:
                self._local.conn = None

    # --- reads ------------------------------------------------------------------------------

    def load(self, workflow_id: str) -> WorkflowSnapshot:
        rows = self._select(
            f"SELECT {SNAP_COLS} FROM workflows WHERE workflow_id = %s", (text_id(workflow_id),)
        )
        if not rows:
            raise UnknownWorkflow(workflow_id=workflow_id)
        return snapshot_from(rows[0])

    def _select(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one read; a read outside a transaction whose prepared statement the
        server had lost (see ``_pg_conn``), or whose connection it dropped, is read again."""
        from psycopg import errors
        from psycopg.pq import TransactionStatus

        def read() -> list[tuple[Any, ...]]:
            with self._conn() as conn:
                try:
                    return conn.execute(sql, args).fetchall()
                except errors.InvalidSqlStatementName:
                    if conn.info.transaction_status != TransactionStatus.IDLE:
                        raise  # a batch's or claim's transaction is aborted: _conn types it
                    forget_prepared(conn)
                    return conn.execute(sql, args).fetchall()

        return self._retrying(read)

    def snapshots(self, machine: str | None = None) -> Iterator[WorkflowSnapshot]:
        where, args = ("WHERE machine = %s", (machine,)) if machine is not None else ("", ())
        sql = f"SELECT {SNAP_COLS} FROM workflows {where} ORDER BY workflow_id"
        for row in self._select(sql, args):
            yield snapshot_from(row)

    def _find(self, filters: Filters) -> list[WorkflowSnapshot]:
        return [snapshot_from(row) for row in self._select(*find_sql(filters))]

    def workflow_ids(self, machine: str | None = None) -> Iterator[str]:
        where, args = ("WHERE machine = %s", (machine,)) if machine is not None else ("", ())
        for (wid,) in self._select(f"SELECT workflow_id FROM workflows {where} ORDER BY 1", args):
            yield wid

    def events(self, workflow_id: str) -> list[Event]:
        rows = self._select(
            f"SELECT {EVENT_COLS} FROM events WHERE workflow_id = %s ORDER BY seq",
            (text_id(workflow_id),),
        )
        if not rows:
            self.load(workflow_id)
        return [event_from(r) for r in rows]

    def find_idempotent(self, workflow_id: str, key: str) -> Event | None:
        rows = self._select(
            f"SELECT {EVENT_COLS} FROM events WHERE workflow_id = %s AND idempotency_key = %s",
            (text_id(workflow_id), text_id(key, "idempotency_key")),
        )
        return event_from(rows[0]) if rows else None

    # --- the write path ---------------------------------------------------------------------

    def commit(self, step: Step, *, expected_version: int) -> None:
        """Write ``step`` in one transaction if the workflow is at ``expected_version``.

        Two round trips: the transaction's statements go in one pipeline flush, then the
        commit. Inside a batch or a tick claim the step is a savepoint of that transaction.
        A connection found dropped before the commit went out is replaced and the step
        written once more; one lost after it is settled by asking the server (see
        :func:`~qaflow.store._pg_conn.stored_after`), else :class:`OutcomeUnknown`.
        """
        self._writable("a command")
        if self._held():
            with conflicts_typed(step.event.workflow_id), self._conn() as conn:
                commit_on(conn, step, expected_version, True)
            return

        def write() -> bool:
            with conflicts_typed(step.event.workflow_id), self._conn() as conn:
                commit_on(conn, step, expected_version, False)
            return True  # written here, and chained by the commit's own seal

        if write_settled(self._recovery, self.where, write, step.event, _RESEND) is None:
            self.seal()  # the lost session had written it; chain it now

    def commit_many(self, steps: Sequence[Step]) -> None:
        """Write ``steps`` in order in one transaction, all or nothing (each version-checked).

        The batch first locks its workflows' rows in id order, so two batches never deadlock.
        """

        self._writable("a batch")
        if not steps:
            return
        if self._held():  # inside a batch or claim
            self._write_many(steps)
            return
        write_settled(
            self._recovery, self.where, lambda: self._write_many(steps), steps[-1].event, _RESEND
        )
        self.seal()

    def _write_many(self, steps: Sequence[Step]) -> None:
        """:meth:`commit_many`'s transaction: one pipeline, undone on any error."""
        from psycopg import errors

        current = steps[0]
        try:
            with self._hold() as conn, pipelined(conn):
                ids = sorted({s.event.workflow_id for s in steps})
                conn.execute(
                    "SELECT 1 FROM workflows WHERE workflow_id = ANY(%s) ORDER BY workflow_id "
                    "FOR UPDATE",
                    (ids,),
                )
                for current in steps:
                    write_step(conn, current, current.event.seq - 1)
        except (Refused, errors.IntegrityError) as error:
            key_used = isinstance(error, Refused) and error.key_used
            wid, expected = current.event.workflow_id, current.event.seq - 1
            with self._conn() as conn:
                raise refusal(conn, wid, expected, key_used) from None

    def fire_due(
        self, now: datetime, breach: Callable[[Deadline], Step | None], *, limit: int
    ) -> list[Step]:
        """Claim due deadlines (``SKIP LOCKED``) with their workflows; commit their breaches."""
        self._writable("tick")
        moment = ensure_aware(now, "now")
        if self._held():
            return self._claim(moment, breach, limit)
        written = write_settled(
            self._recovery,
            self.where,
            lambda: self._claim(moment, breach, limit),
            None,
            "tick again (a deadline's breach fires once)",
        )
        self.seal()
        return written or []

    def _claim(
        self, moment: datetime, breach: Callable[[Deadline], Step | None], limit: int
    ) -> list[Step]:
        """:meth:`fire_due`'s transaction: the claim and its breaches as savepoints."""
        with self._hold() as conn:
            rows = conn.execute(CLAIM, (moment, int(limit))).fetchall()
            return breach_each(
                (deadline_from(row) for row in rows),
                breach,
                lambda step: self.commit(step, expected_version=step.event.seq - 1),
            )
