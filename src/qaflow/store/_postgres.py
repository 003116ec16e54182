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
from typing import TYPE_CHECKING, Any

from qaflow.calendar import ensure_aware
from qaflow.errors import ConcurrencyError, StoreError, UnknownWorkflow, ValidationError
from qaflow.records import (
    GENESIS_HASH,
    AnchorEntry,
    Deadline,
    Event,
    Step,
    WorkflowSnapshot,
    anchor_head,
)
from qaflow.store._find import Filters, FindWorkflows
from qaflow.store._pg_conn import (
    LostStatement,
    forget_prepared,
    lost_typed,
    pipelined,
    write_once,
)
from qaflow.store._pg_period import PeriodReads
from qaflow.store._pg_reads import RowReads
from qaflow.store._pg_sql import (
    ANCHOR_COLS,
    CLAIM,
    PENDING,
    SEAL,
    Refused,
    conflicts_typed,
    create_schema,
    deadline_from,
    event_from,
    find_sql,
    read_only_typed,
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


class PostgresStore(FindWorkflows, RowReads, PeriodReads, VerifyReads):
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
            with psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), **kwargs) as conn:
                create_schema(conn, writable=not self.readonly)
        except psycopg.OperationalError:
            raise ValidationError(
                field="dsn", value=self.where, expected="a reachable PostgreSQL server"
            ) from None
        self.pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn, min_size=min_size, max_size=max_size, kwargs=kwargs, timeout=timeout, open=True
        )
        self._local = threading.local()
        self.seal(wait=True)  # rows a crashed node left pending

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection of the batch or claim this thread is in, else one from the pool."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            with lost_typed(held, self.where):
                yield held
            return
        with (
            read_only_typed(self.where),
            self.pool.connection() as conn,
            lost_typed(conn, self.where),
        ):
            yield conn

    def _writable(self, what: str) -> None:
        """Refuse a write on a store opened read-only, before anything reaches the server."""
        if self.readonly:
            raise StoreError(
                path=self.where, problem=f"is open read-only: {what} writes (open it for writing)"
            )

    @contextmanager
    def _hold(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction that this thread's reads and commits join until it ends."""
        if getattr(self._local, "conn", None) is not None:
            with self._conn() as conn, conn.transaction():
                yield conn
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with lost_typed(conn, self.where), conflicts_typed(), conn.transaction():
                    yield conn
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
        server had lost (see ``_pg_conn``) is read again once the caches agree."""
        from psycopg import errors
        from psycopg.pq import TransactionStatus

        with self._conn() as conn:
            try:
                return conn.execute(sql, args).fetchall()
            except errors.InvalidSqlStatementName:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    raise  # a batch's or claim's transaction is aborted: _conn types it
                forget_prepared(conn)
                return conn.execute(sql, args).fetchall()

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

    def anchor(self) -> Iterator[AnchorEntry]:
        """The sealed anchor, then the rows still pending (heads computed as a seal would).

        Both are read in one snapshot, so a seal running meanwhile neither hides nor
        repeats a row.
        """
        from psycopg.pq import TransactionStatus

        with self._conn() as conn:
            nested = conn.info.transaction_status != TransactionStatus.IDLE
            with conn.transaction():
                if not nested:
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                sealed = conn.execute(
                    f"SELECT {ANCHOR_COLS} FROM anchor ORDER BY position"
                ).fetchall()
                pending = conn.execute(PENDING).fetchall()
        yield from (AnchorEntry(*row) for row in sealed)
        position, head = (sealed[-1][0], sealed[-1][4]) if sealed else (0, GENESIS_HASH)
        for wid, seq, hash_ in pending:
            position += 1
            head = anchor_head(str(head), wid, seq, hash_)
            yield AnchorEntry(position, wid, seq, hash_, head)

    def anchor_tip(self) -> AnchorEntry | None:
        """The sealed anchor's last entry, after sealing what can be (what a checkpoint
        records: a sealed position never moves, a pending one may)."""
        self.seal(wait=True)
        rows = self._select(f"SELECT {ANCHOR_COLS} FROM anchor ORDER BY position DESC LIMIT 1")
        return AnchorEntry(*rows[0]) if rows else None

    def seal(self, *, wait: bool = False) -> int:
        """Chain the pending anchor rows of finished transactions (see ``qaflow_seal``).

        Commits call it without waiting; ``wait=True`` queues behind another sealer and
        commits durably. Returns how many rows were sealed (-1: another sealer was busy).
        """
        if self.readonly or getattr(self._local, "conn", None) is not None:
            return 0  # read-only, or inside a batch or claim: its rows are not final until it ends
        rows = self._select(SEAL, (wait,))  # a lost statement is prepared again, not raised
        return int(rows[0][0]) if rows else 0

    # --- the write path ---------------------------------------------------------------------

    def commit(self, step: Step, *, expected_version: int) -> None:
        """Write ``step`` in one transaction if the workflow is at ``expected_version``.

        Two round trips: the transaction's statements go in one pipeline flush, then the
        commit. Inside a batch or a tick claim the step is a savepoint of that transaction.
        """
        from psycopg import errors
        from psycopg.pq import TransactionStatus

        self._writable("a command")
        wid = step.event.workflow_id
        with conflicts_typed(wid), self._conn() as conn:
            nested = conn.info.transaction_status != TransactionStatus.IDLE
            try:
                write_once(conn, step, expected_version, nested)
            except errors.InvalidSqlStatementName:
                # The server had lost a statement psycopg counts as prepared (deallocated
                # outside qaflow: a failed pipeline no longer does it, see ``_pg_conn``).
                # Forget them all on both sides; the step's savepoint is already undone, and
                # the enclosing batch or claim is not ours to redo: a retryable conflict.
                forget_prepared(conn)
                if nested:
                    raise ConcurrencyError(
                        workflow_id=wid,
                        expected_version=expected_version,
                        actual_version=-1,
                        detail="the server had lost a prepared statement; retry",
                    ) from None
                # Write once more unless the failure came after the commit (only the seal),
                # which the stored hash tells.
                stored = conn.execute(
                    "SELECT hash FROM events WHERE workflow_id = %s AND seq = %s",
                    (text_id(wid), step.event.seq),
                ).fetchone()
                if stored is not None and stored[0] == step.event.hash:
                    conn.execute(SEAL, (False,))
                    return
                write_once(conn, step, expected_version, nested)

    def commit_many(self, steps: Sequence[Step]) -> None:
        """Write ``steps`` in order in one transaction, all or nothing (each version-checked).

        The batch first locks its workflows' rows in id order, so two batches never deadlock.
        """

        self._writable("a batch")
        if not steps:
            return
        again = getattr(self._local, "conn", None) is None  # a transaction of our own
        try:
            self._write_many(steps)
        except LostStatement:
            if not again:
                raise
            self._write_many(steps)  # it wrote nothing, and the caches now agree
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
        try:
            written = self._claim(moment, breach, limit)
        except LostStatement:  # the claim wrote nothing, and the caches now agree
            written = self._claim(moment, breach, limit)
        self.seal()
        return written

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
