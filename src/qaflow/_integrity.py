"""``verify``: everything that can be checked of a store's record, and the checkpoint.

Per workflow: the hash chain (seq 1..n, each ``prev_hash`` the previous ``hash``, each hash
recomputed), the snapshot against the replay of its events, and every derived row (deadlines
with their status, notifications, tasks) against the rows the replay produces. For the whole
store: the anchor (the log of every committed event in commit order with a running head,
:class:`~qaflow.records.AnchorEntry`) is recomputed and compared with the events, so events
removed from a workflow's end, a whole workflow removed, a snapshot row removed, or a chain
rewritten are each named; and rows of workflows that do not exist are named.

What the anchor alone cannot see: someone who rewrites the events *and* the anchor with
qaflow's own hashes. A checkpoint (:func:`make_checkpoint`) kept outside the database closes
that gap up to the moment it was taken: ``verify`` recomputes the anchor's head at the
checkpoint's position and compares it. Signed with an HMAC key the database does not hold, a
checkpoint cannot be forged by someone holding only the database. Nothing protects against
an attacker with both the database and the key.

Verification only reads. It never raises for a damaged row: each problem is reported with
its workflow, event and what is wrong (:class:`VerifyReport`).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from qaflow._fold import Folded, fold, rows_match
from qaflow.errors import IntegrityError, UnknownWorkflow, ValidationError
from qaflow.records import (
    GENESIS_HASH,
    HASH_FORMAT,
    AnchorEntry,
    Event,
    WorkflowSnapshot,
    anchor_head,
    canonical_json,
    event_hash,
)

if TYPE_CHECKING:
    from qaflow._reads import EngineReads as Engine
    from qaflow.store import Store

__all__ = [
    "CHECKPOINT_FORMAT",
    "Problem",
    "VerifyReport",
    "make_checkpoint",
    "verify_store",
]

CHECKPOINT_FORMAT = "qaflow-checkpoint/1"
"""The ``format`` of a checkpoint document."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


@attrs.frozen
class Problem:
    """One thing ``verify`` found wrong: which workflow (``None``: the store), which event."""

    workflow_id: str | None
    seq: int | None
    what: str


@attrs.define
class VerifyReport:
    """The result of verifying a store or one workflow: counts and every problem found."""

    workflows: int = 0
    events: int = 0
    anchor_position: int | None = None
    """The anchor's last position (``None`` when only one workflow was verified)."""
    anchor_head: str | None = None
    checkpoint: str = "none"
    """``"none"``, ``"matched"``, ``"matched (signature checked)"`` or ``"failed"``."""
    problems: list[Problem] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, workflow_id: str | None, seq: int | None, what: str) -> None:
        self.problems.append(Problem(workflow_id, seq, what))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "workflows": self.workflows,
            "events": self.events,
            "anchor": {"position": self.anchor_position, "head": self.anchor_head},
            "checkpoint": self.checkpoint,
            "problems": [attrs.asdict(p) for p in self.problems],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=True)

    def raise_for_problems(self) -> None:
        """Raise :class:`IntegrityError` for the first problem, saying how many more."""
        if not self.problems:
            return
        first = self.problems[0]
        more = len(self.problems) - 1
        what = first.what + (f" (and {more} more problem(s))" if more else "")
        raise IntegrityError(workflow_id=first.workflow_id, seq=first.seq, problem=what)


def _failure(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


# --- one workflow ----------------------------------------------------------------------------


def _check_chain(report: VerifyReport, wid: str, events: list[Event]) -> None:
    prev = GENESIS_HASH
    for n, event in enumerate(events, start=1):
        if event.seq != n:
            report.add(wid, event.seq, f"expected seq {n}: events are missing or out of order")
        if event.prev_hash != prev:
            report.add(wid, event.seq, "prev_hash does not chain to the previous event")
        try:
            recomputed = event_hash(event)
        except (TypeError, ValueError) as error:
            report.add(wid, event.seq, f"the event cannot be hashed ({_failure(error)})")
        else:
            if recomputed != event.hash:
                report.add(wid, event.seq, "hash does not match the event's content")
        prev = event.hash


def _differences(a: object, b: object, names: Iterable[str]) -> list[str]:
    return [n for n in names if getattr(a, n) != getattr(b, n)]


_SNAPSHOT_FIELDS = tuple(f.name for f in attrs.fields(WorkflowSnapshot))


def _compare_rows(
    report: VerifyReport,
    wid: str,
    kind: str,
    expected: Mapping[str, Any],
    stored: Mapping[str, Any],
    seq_of: Any,
) -> None:
    for rid in sorted(set(expected) - set(stored)):
        report.add(wid, seq_of(expected[rid]), f"{kind} row {rid!r} is missing")
    for rid in sorted(set(stored) - set(expected)):
        report.add(wid, seq_of(stored[rid]), f"{kind} row {rid!r} was not produced by any event")
    for rid in sorted(set(expected) & set(stored)):
        if expected[rid] != stored[rid]:
            report.add(
                wid,
                seq_of(expected[rid]),
                f"{kind} row {rid!r} differs from the replay "
                f"({_what_differs(expected[rid], stored[rid])})",
            )


def _what_differs(a: Any, b: Any) -> str:
    if isinstance(a, tuple):  # (deadline, status)
        fields = _differences(a[0], b[0], (f.name for f in attrs.fields(type(a[0]))))
        if a[1] != b[1]:
            fields.append(f"status {b[1]!r}, expected {a[1]!r}")
        return ", ".join(fields)
    return ", ".join(_differences(a, b, (f.name for f in attrs.fields(type(a)))))


Chain = list[tuple[int, str]]
"""A workflow's events as the anchor check needs them: ``(seq, hash)`` in order."""

Derived = tuple[Sequence[tuple[Any, ...]], Sequence[tuple[Any, ...]], Sequence[tuple[Any, ...]]]
"""A workflow's deadline (status last), notification and task rows as stored, undecoded."""

_NO_ROWS: Derived = ((), (), ())

_BATCH = 256
"""Workflows whose derived rows ``verify`` of the whole store reads in one query a table."""


def _events_batch(store: Store, ids: Sequence[str]) -> dict[str, list[tuple[Any, ...]]] | None:
    """The stored event rows of ``ids`` by workflow (a store's ``event_rows_of``), or
    ``None``, as :func:`_derived_batch`; a workflow absent from the answer has no events
    (its fast check then fails and the plain check names it)."""
    read = getattr(store, "event_rows_of", None)
    if not callable(read):
        return None
    try:
        found: dict[str, list[tuple[Any, ...]]] | None = read(ids)
    except Exception:
        return None
    return found


def _heads_batch(store: Store, ids: Sequence[str]) -> dict[str, WorkflowSnapshot]:
    """The stored snapshots of ``ids`` (a store's ``snapshots_of``); a workflow absent from
    the answer (or every one, without such a read) loads its own."""
    read = getattr(store, "snapshots_of", None)
    if not callable(read):
        return {}
    try:
        found: dict[str, WorkflowSnapshot] = read(ids)
    except Exception:
        return {}
    return found


def _derived_batch(store: Store, ids: Sequence[str]) -> dict[str, Derived] | None:
    """The stored derived rows of ``ids`` by workflow (a store's ``derived_rows_of``), or
    ``None`` (no such read, too many rows for one batch, or it failed): each workflow then
    reads its own. A workflow absent from the answer has no rows; a row grouped wrongly
    only sends its workflow to the plain check, which reads its rows again and names any
    problem."""
    read = getattr(store, "derived_rows_of", None)
    if not callable(read):
        return None
    try:
        found: dict[str, Derived] | None = read(ids)
    except Exception:
        return None
    return found


def _intact(
    engine: Engine,
    report: VerifyReport,
    wid: str,
    chain: bool = True,
    derived: Derived | None = None,
    logged: Sequence[tuple[Any, ...]] | None = None,
    head: WorkflowSnapshot | None = None,
) -> Chain | None:
    """The fast check of one workflow (:mod:`qaflow._fold`): its chain when everything
    :func:`_check_workflow` checks holds, else ``None`` (that check then says what is wrong).
    ``chain=False`` (one workflow verified alone, no anchor to check it against): an empty
    chain stands for "intact". ``derived``: the workflow's stored derived rows, already read
    with a batch of workflows (:func:`_derived_batch`), ``logged`` its event rows
    (:func:`_events_batch`), ``head`` its stored snapshot; ``None``: read them here.

    Only for a store that hands out its rows undecoded (``event_rows``, ``derived_rows``).
    """
    store = engine.store
    read_events = getattr(store, "event_rows", None)
    read_rows = getattr(store, "derived_rows", None)
    if not callable(read_events) or not callable(read_rows):
        return None
    try:
        rows = read_events(wid) if logged is None else logged
        stored = store.load(wid) if head is None else head
        if stored.version != len(rows):
            return None
        folded = fold(engine._registry, stored, rows, rows_wanted=True)
        if folded is None or folded.snapshot != stored:
            return None
        if not rows_match(folded, *(read_rows(wid) if derived is None else derived)):
            return None
    except Exception:
        return None
    report.events += len(rows)
    return [(row[1], row[10]) for row in rows] if chain else []


def _pairs(events: list[Event]) -> Chain:
    return [(e.seq, e.hash) for e in events]


def _check_workflow(
    engine: Engine,
    report: VerifyReport,
    wid: str,
    chain: bool = True,
    derived: Derived | None = None,
    logged: Sequence[tuple[Any, ...]] | None = None,
    head: WorkflowSnapshot | None = None,
) -> Chain | None:
    """Check one workflow, adding what is wrong to ``report``; its ``(seq, hash)`` chain for
    the anchor check (``chain=False``: the chain may be left empty, nothing is skipped).
    ``derived``, ``logged``, ``head``: its stored rows for the fast check (:func:`_intact`) only;
    the plain check reads and decodes its own."""
    fast = _intact(engine, report, wid, chain, derived, logged, head)
    if fast is not None:
        return fast
    store = engine.store
    try:
        events = store.events(wid)
    except UnknownWorkflow:
        raise
    except Exception as error:
        report.add(wid, None, f"its events cannot be read ({_failure(error)})")
        return None
    report.events += len(events)
    before = len(report.problems)
    _check_chain(report, wid, events)
    chain_intact = len(report.problems) == before
    try:
        stored = store.load(wid)
    except Exception as error:
        report.add(wid, None, f"its snapshot cannot be read ({_failure(error)})")
        return _pairs(events)
    if not events:
        report.add(wid, None, "no events")
        return _pairs(events)
    if stored.version != len(events):
        report.add(
            wid, None, f"snapshot is at version {stored.version} but there are {len(events)} events"
        )
    want = Folded()  # folded step by step: no list of steps is kept
    try:
        for replayed_step in engine._replay_from(stored, events, hashes_checked=chain_intact):
            want.add_step(replayed_step)
    except Exception as error:
        report.add(wid, None, f"its events cannot be replayed ({_failure(error)})")
        return _pairs(events)
    changed = _differences(want.snapshot, stored, _SNAPSHOT_FIELDS)
    if changed:
        report.add(
            wid,
            len(events),
            "replaying the events does not reproduce the snapshot (" + ", ".join(changed) + ")",
        )
    try:
        rows = {d.id: (d, status) for d, status in store.deadlines(wid)}
        notes = {n.id: n for n in store.notifications(wid)}
        tasks = {t.id: t for t in store.tasks(wid)}
    except Exception as error:
        report.add(
            wid, None, f"its deadline, notification or task rows cannot be read ({_failure(error)})"
        )
        return _pairs(events)
    _compare_rows(report, wid, "deadline", want.deadlines, rows, lambda r: r[0].opened_seq)
    _compare_rows(report, wid, "notification", want.notes, notes, lambda r: r.seq)
    _compare_rows(report, wid, "task", want.tasks, tasks, lambda r: r.seq)
    return _pairs(events)


# --- the whole store -------------------------------------------------------------------------


def _check_anchor(
    report: VerifyReport,
    entries: list[AnchorEntry],
    chains: dict[str, Chain | None],
) -> list[str]:
    """Check the anchor against itself and the events; return its recomputed heads."""
    heads: list[str] = []
    head = GENESIS_HASH
    anchored: dict[str, list[AnchorEntry]] = {}
    for n, entry in enumerate(entries, start=1):
        if entry.position != n:
            report.add(None, None, f"anchor position {n} is missing (found {entry.position})")
        head = anchor_head(head, entry.workflow_id, entry.seq, entry.hash)
        heads.append(head)
        if entry.head != head:
            report.add(None, None, f"anchor position {n}: stored head does not chain")
            head = entry.head if _HEX64.fullmatch(str(entry.head)) else head
        anchored.setdefault(entry.workflow_id, []).append(entry)
    for wid, logged in anchored.items():
        if wid not in chains:
            report.add(
                wid, None, f"in the anchor ({len(logged)} event(s)) but missing from the store"
            )
            continue
        events = chains[wid]
        if events is None:
            continue
        by_seq = dict(events)
        for entry in logged:
            found = by_seq.get(entry.seq)
            if found is None:
                report.add(wid, entry.seq, "event recorded in the anchor is missing")
            elif found != entry.hash:
                report.add(wid, entry.seq, "event differs from the one the anchor recorded")
        seen = {entry.seq for entry in logged}
        for seq, _ in events:
            if seq not in seen:
                report.add(wid, seq, "event is not in the anchor (written outside qaflow)")
    for wid, events in chains.items():
        if wid not in anchored and events:
            report.add(wid, None, "workflow is not in the anchor (written outside qaflow)")
    return heads


def _check_orphans(report: VerifyReport, store: Store, known: set[str]) -> None:
    listed = getattr(store, "derived_ids", None)  # a store that lists them undecoded
    try:
        if callable(listed):
            rows: list[tuple[str, str, str]] = listed()
        else:
            rows = [("deadline", d.workflow_id, d.id) for d, _ in store.deadlines()]
            rows += [("notification", n.workflow_id, n.id) for n in store.notifications()]
            rows += [("task", t.workflow_id, t.id) for t in store.tasks()]
    except Exception as error:
        report.add(None, None, f"derived rows cannot be read ({_failure(error)})")
        return
    for kind, wid, rid in rows:
        if wid not in known:
            report.add(wid, None, f"{kind} row {rid!r} belongs to no workflow in the store")


def _signature(body: Mapping[str, Any], key: bytes) -> str:
    return "hmac-sha256:" + hmac.new(key, canonical_json(dict(body)).encode(), "sha256").hexdigest()


def _check_checkpoint(
    report: VerifyReport, heads: list[str], checkpoint: Mapping[str, Any], key: bytes | None
) -> None:
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    position = body.get("position")
    head = body.get("head")
    if (
        body.get("format") != CHECKPOINT_FORMAT
        or not isinstance(position, int)
        or isinstance(position, bool)
        or position < 0
        or not isinstance(head, str)
        or not (_HEX64.fullmatch(head) or (position == 0 and head == GENESIS_HASH))
    ):
        report.checkpoint = "failed"
        report.add(None, None, f"the checkpoint is not a {CHECKPOINT_FORMAT} document")
        return
    signed = "none"
    signature = checkpoint.get("signature")
    if key is not None:
        if not isinstance(signature, str):
            report.checkpoint = "failed"
            report.add(None, None, "the checkpoint is not signed but a key was given")
            return
        if not hmac.compare_digest(signature, _signature(body, key)):
            report.checkpoint = "failed"
            report.add(None, None, "the checkpoint's signature does not match the key")
            return
        signed = "signature checked"
    if position > len(heads):
        report.checkpoint = "failed"
        report.add(
            None,
            None,
            f"the anchor has {len(heads)} position(s) but the checkpoint recorded {position}: "
            "committed history was removed",
        )
        return
    at = heads[position - 1] if position else GENESIS_HASH
    if at != head:
        report.checkpoint = "failed"
        report.add(
            None,
            None,
            f"the anchor at position {position} does not match the checkpoint: history "
            "committed before the checkpoint was rewritten or removed",
        )
        return
    report.checkpoint = "matched" + (f" ({signed})" if signed != "none" else "")


def verify_store(
    engine: Engine,
    workflow_id: str | None = None,
    *,
    checkpoint: Mapping[str, Any] | None = None,
    key: bytes | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify one workflow, or the whole store with its anchor (and a checkpoint); reads only.

    ``progress(done, total)`` is called as workflows are checked (about 200 times).

    Raises :class:`UnknownWorkflow` only for a ``workflow_id`` the store does not have;
    everything else found is a :class:`Problem` in the report.
    """
    report = VerifyReport()
    store = engine.store
    forget = getattr(store, "forget_cached", None)
    if callable(forget):  # read what the database holds, not what this process wrote
        forget()
    if workflow_id is not None:
        if not isinstance(workflow_id, str):
            raise ValidationError(field="workflow_id", value=workflow_id, expected="text")
        report.workflows = 1
        _check_workflow(engine, report, workflow_id, chain=False)
        return report
    try:
        ids = list(store.workflow_ids())
    except Exception as error:
        report.add(None, None, f"the workflow list cannot be read ({_failure(error)})")
        return report
    chains: dict[str, Chain | None] = {}
    step = max(1, len(ids) // 200)
    batch: dict[str, Derived] | None = None
    logs: dict[str, list[tuple[Any, ...]]] | None = None
    snaps: dict[str, WorkflowSnapshot] = {}
    for done, wid in enumerate(ids, 1):
        if (done - 1) % _BATCH == 0:
            logs = _events_batch(store, ids[done - 1 : done - 1 + _BATCH])
            batch = _derived_batch(store, ids[done - 1 : done - 1 + _BATCH])
            snaps = _heads_batch(store, ids[done - 1 : done - 1 + _BATCH])
        try:
            chains[wid] = _check_workflow(
                engine,
                report,
                wid,
                derived=None if batch is None else batch.get(wid, _NO_ROWS),
                logged=None if logs is None else logs.get(wid, []),
                head=snaps.get(wid),
            )
        except UnknownWorkflow:
            report.add(wid, None, "listed but its snapshot is missing")
            chains[wid] = None
        if progress is not None and (done % step == 0 or done == len(ids)):
            progress(done, len(ids))
    report.workflows = len(ids)
    try:
        entries = list(store.anchor())
    except Exception as error:
        report.add(None, None, f"the anchor cannot be read ({_failure(error)})")
        entries = []
    heads = _check_anchor(report, entries, chains)
    report.anchor_position = len(heads)
    report.anchor_head = heads[-1] if heads else GENESIS_HASH
    _check_orphans(report, store, set(ids))
    if checkpoint is not None:
        _check_checkpoint(report, heads, checkpoint, key)
    return report


def make_checkpoint(store: Store, *, key: bytes | None = None) -> dict[str, Any]:
    """A checkpoint of the anchor's head now, to keep outside the database (reads only).

    With ``key`` (bytes the database does not hold) it carries an HMAC-SHA256 signature, so
    someone who can change the database cannot write a matching checkpoint without the key.
    """
    tip = store.anchor_tip()
    body: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "hash_format": HASH_FORMAT,
        "position": 0 if tip is None else tip.position,
        "head": GENESIS_HASH if tip is None else tip.head,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if key is not None:
        if not isinstance(key, bytes) or not key:
            raise ValidationError(field="key", value=key, expected="non-empty bytes")
        body["signature"] = _signature(body, key)
    return body
