"""PostgresStore's anchor: reading it and sealing its pending rows (a mixin, as
``_pg_reads``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from qaflow.records import GENESIS_HASH, AnchorEntry, anchor_head
from qaflow.store._pg_sql import ANCHOR_COLS, PENDING, SEAL

if TYPE_CHECKING:
    import psycopg

__all__ = ["AnchorReads"]

R = TypeVar("R")


class AnchorReads:
    """The anchor of a :class:`PostgresStore`."""

    readonly: bool

    def _select(self, sql: str, args: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _conn(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _retrying(self, run: Callable[[], R]) -> R:
        raise NotImplementedError

    def _held(self) -> bool:
        raise NotImplementedError

    def anchor(self) -> Iterator[AnchorEntry]:
        """The sealed anchor, then the rows still pending (heads computed as a seal would).

        Both are read in one snapshot, so a seal running meanwhile neither hides nor
        repeats a row.
        """
        sealed, pending = self._retrying(self._anchor_rows)
        yield from (AnchorEntry(*row) for row in sealed)
        position, head = (sealed[-1][0], sealed[-1][4]) if sealed else (0, GENESIS_HASH)
        for wid, seq, hash_ in pending:
            position += 1
            head = anchor_head(str(head), wid, seq, hash_)
            yield AnchorEntry(position, wid, seq, hash_, head)

    def _anchor_rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The sealed rows and the pending ones, read in one snapshot."""
        from psycopg.pq import TransactionStatus

        with self._conn() as conn:
            nested = conn.info.transaction_status != TransactionStatus.IDLE
            with conn.transaction():
                if not nested:
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                sealed = conn.execute(f"SELECT {ANCHOR_COLS} FROM anchor ORDER BY position")
                pending = conn.execute(PENDING)
                return sealed.fetchall(), pending.fetchall()

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
        if self.readonly or self._held():
            return 0  # read-only, or inside a batch or claim: its rows are not final until it ends
        rows = self._select(SEAL, (wait,))  # a lost statement is prepared again, not raised
        return int(rows[0][0]) if rows else 0
