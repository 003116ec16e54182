"""Replay's fast path: a workflow's stored event rows folded straight into its snapshot.

:func:`fold` reaches the same snapshot (and, for ``verify``, the same derived rows) as
:func:`qaflow._replay.replayed`, the step-by-step replay through
:func:`qaflow._compute.replay_step`, with less work an event (issue 14):

- it reads rows as the store holds them (:meth:`SQLiteStore.event_rows`): no
  :class:`~qaflow.records.Event` is built, an :class:`~qaflow.records.Actor` is shared per
  person and role, the time is parsed once and its hashing text taken from the stored text;
- it checks each event's hash itself, over the same canonical JSON array as
  :func:`~qaflow.records.hash_fields`, built from its pieces (see "Hashing the stored
  payload text" below);
- an internal transition without effects makes no context, snapshot or step: the running
  state, version, time and hash are all that change;
- ``rows_wanted=False`` (:meth:`Engine.replay`) builds no notification or task, which no
  snapshot depends on; ``rows_wanted=True`` (``verify``) gathers them as plain tuples of
  their fields in the store's column order (``collect(..., tuples=True)``), no record
  built, and :func:`rows_match` compares those with the stored rows.

It never reports anything: it returns ``None`` as soon as an event is not exactly what the
plain replay would reproduce (a hash, sequence, chain link, source or destination that does
not match, a row that does not decode as the plain store read would, a migration, anything
that raises). The caller then runs the plain replay, which names what is wrong; so the fast
path can only ever say "the same as the plain replay, and intact", never hide a problem.
A recorded miss or a choice between transitions sharing a trigger goes through
:func:`~qaflow._compute.replay_step` itself, with the event built from the row.

Hashing the stored payload text. The hash is over the canonical encoding of the *decoded*
payload (sorted keys, no spaces, UTF-8 kept). The stores write the payload in exactly that
form (:data:`qaflow.store._rows.canonical_text`), so re-encoding the decoded payload only
rebuilds the text already stored. The fold uses the stored text in the hash only once that
text is proven canonical: it decoded exactly (the scan ends at its end) to an object, and
the canonical encoding of that object is the text itself. The proof is remembered by text
(``_PROVEN``, bounded; whether the object names a ``deadline_id`` with it), so a text seen
again is hashed as it stands, and an internal transition without effects need not even
decode it (nothing but the hash reads its payload). A text not proven canonical (a database
written before payloads were stored canonically, or a respelling such as added spaces) is
hashed through the canonical encoder as before: slower, never less checked.

Why the stored text is not simply hashed as it stands when its digest matches: a digest
computed over a respelled body (someone rewrote the row and hashed their own spelling)
would then be accepted, although the event's hash (:func:`~qaflow.records.event_hash`
over its decoded content) does not match; the plain check reports that row, and so must
the fold (``tests/adversarial/test_fold_tamper.py`` holds that case). A digest equal to
the hash of the body built with a proven-canonical text is exactly the plain check: the
two bodies are the same string.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from qaflow._build import snapshot_of
from qaflow._compute import replay_step
from qaflow._effects import collect
from qaflow._specs import SpecRegistry
from qaflow.records import (
    GENESIS_HASH,
    Actor,
    Deadline,
    Event,
    Notification,
    Step,
    Task,
    WorkflowSnapshot,
    utc_isoformat,
)
from qaflow.spec import DEADLINE_MISSED, POLICY_MIGRATED, Context, MachineSpec, TransitionSpec

__all__ = ["Folded", "event_tuples", "fold", "rows_match"]

_D = "[0-9]"
_ISO_UTC = re.compile(
    f"{_D * 4}-{_D * 2}-{_D * 2}T{_D * 2}:{_D * 2}:{_D * 2}(?:\\.{_D * 6})?\\+00:00"
)
"""A stored time this module turns into its hashing text without formatting it again (each
digit its own class: the same language as ``[0-9]{n}``, matched with less work)."""

_C_ENCODER: Callable[..., Callable[[Any, int], Any]] | None = getattr(
    json.encoder, "c_make_encoder", None
)
_ENCODE = (
    None
    if _C_ENCODER is None  # pragma: no cover - CPython has the C accelerator
    else _C_ENCODER(
        None,
        json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).default,
        json.encoder.encode_basestring,
        None,
        ":",
        ",",
        True,
        False,
        False,
    )
)
"""The canonical hash encoder of :func:`qaflow.records.hash_fields` (C, no NaN, sorted keys,
no spaces, UTF-8 kept; without it the fold steps aside). It has no circular-reference
``markers`` dict, so nothing is shared between calls or threads: a decoded row holds no
cycle, and a payload in memory with one exhausts the recursion limit, which the fold
treats as anything else that raises."""

_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""``json.loads`` without its Python wrapper: the same C scanner, same values."""

_PROVEN: dict[str, bool] = {}
"""Payload texts proven canonical (each decoded to an object whose canonical encoding is that
very text), with whether the object has a ``deadline_id``. Only ever a pure function of the
text, so sharing it between replays and threads is safe; it is emptied when full."""

_PROVEN_MAX = 4096
_PROVEN_TEXT_MAX = 1024
"""At most this many texts of at most this many characters: a few MiB at worst."""


class Folded:
    """A replay's last snapshot and the rows it expects (deadlines with their status,
    notifications, tasks by id): what :func:`fold` reached, or verify's plain path folded
    step by step (no list of steps is kept: a long history would only feed the collector).

    The plain path keeps records; :func:`fold` keeps each notification's and task's fields
    as a tuple in the store's column order (``note_rows``, ``task_rows``: the fields of
    ``Notification(*row)``/``Task(*row)``). ``notes`` and ``tasks`` give records either way.
    """

    __slots__ = ("_notes", "_tasks", "deadlines", "note_rows", "snapshot", "task_rows")

    def __init__(self) -> None:
        self.snapshot: WorkflowSnapshot | None = None
        self.deadlines: dict[str, tuple[Deadline, str]] = {}
        self._notes: dict[str, Notification] = {}
        self._tasks: dict[str, Task] = {}
        self.note_rows: dict[str, tuple[Any, ...]] = {}
        self.task_rows: dict[str, tuple[Any, ...]] = {}

    @property
    def notes(self) -> dict[str, Notification]:
        """The last notification of each id, as records."""
        made = {nid: Notification(*row) for nid, row in self.note_rows.items()}
        return made | self._notes if made else self._notes

    @property
    def tasks(self) -> dict[str, Task]:
        """The last task of each id, as records."""
        made = {tid: Task(*row) for tid, row in self.task_rows.items()}
        return made | self._tasks if made else self._tasks

    def add_step(self, step: Step) -> None:
        """Fold one step of the plain replay (its snapshot becomes the last)."""
        self.snapshot = step.snapshot
        self.add(step.opened, step.closed, step.breached, step.notifications, step.tasks)

    def add(
        self,
        opened: Sequence[Deadline],
        closed: Sequence[str],
        breached: Sequence[str],
        notes: Sequence[Notification],
        tasks: Sequence[Task],
    ) -> None:
        """Fold one step's rows: a deadline opened, then closed or breached; the last
        notification or task of each id."""
        self.add_deadlines(opened, closed, breached)
        for n in notes:
            self._notes[n.id] = n
        for t in tasks:
            self._tasks[t.id] = t

    def add_deadlines(
        self, opened: Sequence[Deadline], closed: Sequence[str], breached: Sequence[str]
    ) -> None:
        """Fold one step's deadline rows: opened, then closed or breached."""
        deadlines = self.deadlines
        for d in opened:
            deadlines[d.id] = (d, "open")
        for did in closed:
            found = deadlines.get(did)
            if found is not None and found[1] == "open":
                deadlines[did] = (found[0], "closed")
        for did in breached:
            found = deadlines.get(did)
            if found is not None:
                deadlines[did] = (found[0], "breached")

    def add_tuples(self, notes: Sequence[Notification], tasks: Sequence[Task]) -> None:
        """Fold records as :func:`fold` keeps them (a step of :func:`replay_step`)."""
        for n in notes:
            self.note_rows[n.id] = (
                n.id, n.workflow_id, n.seq, n.recipient_role, n.recipient_id, n.reason,
                n.clause, n.created_at,
            )  # fmt: skip
        for t in tasks:
            self.task_rows[t.id] = (
                t.id, t.workflow_id, t.seq, t.kind, t.owner_role, t.owner_id, t.due_at,
                t.clause, t.created_at,
            )  # fmt: skip


def event_tuples(events: Sequence[Event]) -> list[tuple[Any, ...]]:
    """Events as rows for :func:`fold` (a store without :meth:`event_rows`)."""
    return [
        (
            e.workflow_id,
            e.seq,
            e.trigger,
            e.source,
            e.dest,
            e.actor.id,
            e.actor.role,
            e.at,
            e.payload,
            e.prev_hash,
            e.hash,
            e.idempotency_key,
        )
        for e in events
    ]


_BARE, _EFFECTS, _STEP = 0, 1, 2
"""How an event is folded: an internal transition without effects changes only the running
state; one with effects runs them (:func:`~qaflow._effects.collect`); a recorded miss or a
choice between transitions sharing a trigger goes through :func:`replay_step`."""

Plan = tuple[str, Actor, TransitionSpec | None, int]


def _plan(spec: MachineSpec, key: tuple[Any, ...]) -> Plan | None:
    """What every event with this (trigger, source, dest, actor id, role) does, worked out
    once a replay: the JSON text of those five in the hash, the actor, the transition and
    how to fold it (``None``: the plain replay decides)."""
    trigger, source, dest, actor_id, role = key
    if trigger == POLICY_MIGRATED or any(type(text) is not str for text in key):
        return None  # a migration changes the spec: replayed step by step
    middle = ",".join(json.encoder.encode_basestring(text) for text in key)
    actor = Actor(actor_id, role)
    candidates = spec.candidates(source, trigger)
    if trigger == DEADLINE_MISSED or len(candidates) > 1:
        return middle, actor, None, _STEP
    if not candidates or candidates[0].dest_from(source) != dest:
        return None
    t = candidates[0]
    bare = t.dest is None and not t.effects and not spec.rolling
    return middle, actor, t, _BARE if bare else _EFFECTS


def fold(
    registry: SpecRegistry,
    head: WorkflowSnapshot,
    rows: Sequence[tuple[Any, ...]],
    *,
    rows_wanted: bool,
) -> Folded | None:
    """The replay of ``rows`` (the workflow's event rows, in order) for the workflow whose
    stored snapshot is ``head``; ``None`` when the plain replay must decide (module doc).

    ``rows_wanted``: fold the deadline, notification and task rows ``verify`` compares.
    """
    try:
        return _fold(registry, head, rows, rows_wanted)
    except Exception:  # whatever it is, the plain replay reports it
        return None


def _fold(
    registry: SpecRegistry,
    head: WorkflowSnapshot,
    rows: Sequence[tuple[Any, ...]],
    rows_wanted: bool,
) -> Folded | None:
    if not rows or _ENCODE is None:
        return None
    spec = registry.pinned(head)
    wid, machine, policy, version_of = (
        head.workflow_id,
        head.machine,
        head.policy,
        head.policy_version,
    )
    fingerprint = spec.fingerprint if head.fingerprint else ""
    state = spec.initial
    data: dict[str, Any] = {}
    deadlines: tuple[Deadline, ...] = ()
    created: datetime | None = None
    updated: datetime | None = None
    last_hash = GENESIS_HASH
    plans: dict[tuple[Any, ...], Plan] = {}
    quote = json.encoder.encode_basestring
    wid_text = quote(wid)
    blank = hashlib.sha256()  # copied each event: cheaper than a new OpenSSL context each time
    encode = _ENCODE
    scan = _SCAN
    iso_match = _ISO_UTC.fullmatch
    parse = datetime.fromisoformat
    proven = _PROVEN.get
    folded = Folded()
    note_rows, task_rows, opened_rows = folded.note_rows, folded.task_rows, folded.deadlines
    n = 0
    for row in rows:
        n += 1
        r_wid, seq, trigger, source, dest, _, _, at_raw, payload, prev, digest, key = row
        if r_wid != wid or type(seq) is not int or seq != n or prev != last_hash:
            return None
        if source != state:
            return None
        if type(at_raw) is str:
            if iso_match(at_raw) is None:
                return None
            at = parse(at_raw)
            # isoformat(), which the hash holds, leaves out zero microseconds
            at_text = at_raw[:19] + at_raw[26:] if at_raw[19:26] == ".000000" else at_raw
        elif type(at_raw) is datetime:
            at = at_raw
            at_text = utc_isoformat(at)
        else:
            return None
        if at.tzinfo is not UTC:
            return None
        what = row[2:7]
        plan = plans.get(what)
        if plan is None:
            plan = _plan(spec, what)
            if plan is None:
                return None
            plans[what] = plan
        middle, actor, transition, how = plan
        if type(payload) is str:
            text = payload
            marked = proven(text)  # None: not (yet) proven canonical
            quiet = marked is False and how == _BARE
            if quiet:
                canonical = text  # nothing but the hash reads this event's payload
            else:
                payload, end = scan(text, 0)
                if end != len(text) or type(payload) is not dict:
                    return None
                if marked is None:
                    canonical = "".join(encode(payload, 0))
                    if canonical == text and len(text) <= _PROVEN_TEXT_MAX:
                        if len(_PROVEN) >= _PROVEN_MAX:
                            _PROVEN.clear()
                        _PROVEN[text] = "deadline_id" in payload
                else:
                    canonical = text
        elif type(payload) is dict:
            quiet = False
            canonical = "".join(encode(payload, 0))
        else:
            return None
        # The canonical array of records.hash_fields from its pieces: the strings as JSON
        # text (prev_hash is hex: it equals the hash before it, checked; the time matched
        # _ISO_UTC or is isoformat()'s own), the payload's canonical text (module doc).
        body = (
            f'[{wid_text},{seq},{middle},"{at_text}",{canonical},"{prev}",'
            f"{'null' if key is None else quote(key)}]"
        )
        hashed = blank.copy()
        hashed.update(body.encode())
        if hashed.hexdigest() != digest:
            return None
        if quiet or (how == _BARE and "deadline_id" not in payload):
            pass
        elif how != _STEP and transition is not None:
            snapshot = snapshot_of(
                wid, machine, policy, version_of, state, data, n - 1, created, updated, last_hash,
                deadlines, fingerprint,
            )  # fmt: skip
            ctx = Context(spec, snapshot, trigger, state, dest, actor, at, payload, dict(data), n)
            out = collect(spec, ctx, transition, rows_wanted, rows_wanted)
            state, data, deadlines = dest, ctx.data, tuple(out.open_now.values())
            if rows_wanted:
                for d in out.opened:
                    opened_rows[d.id] = (d, "open")
                if out.closed or out.breached:
                    folded.add_deadlines((), out.closed, out.breached)
                for r in out.note_rows:
                    note_rows[r[0]] = r
                for r in out.task_rows:
                    task_rows[r[0]] = r
        else:
            snapshot = WorkflowSnapshot(
                wid, machine, policy, version_of, state, data, n - 1, created, updated, last_hash,
                deadlines, fingerprint,
            )  # fmt: skip
            event = Event(wid, seq, trigger, source, dest, actor, at, payload, prev, digest, key)
            step = replay_step(spec, snapshot, event, hash_checked=True)
            if step.event is not event:
                return None
            state, data, deadlines = (
                step.snapshot.state,
                step.snapshot.data,
                step.snapshot.deadlines,
            )
            if rows_wanted:
                folded.add_deadlines(step.opened, step.closed, step.breached)
                folded.add_tuples(step.notifications, step.tasks)
        if created is None:
            created = at
        updated = at
        last_hash = digest
    folded.snapshot = WorkflowSnapshot(
        wid, machine, policy, version_of, state, data, n, created, updated, last_hash, deadlines,
        fingerprint,
    )  # fmt: skip
    return folded


def rows_match(
    folded: Folded,
    deadlines: Sequence[tuple[Any, ...]],
    notes: Sequence[tuple[Any, ...]],
    tasks: Sequence[tuple[Any, ...]],
) -> bool:
    """Whether the stored rows (undecoded, as ``derived_rows`` gives them) are exactly the
    ones the replay produced: each field equal to what the store's decoder would give.

    ``False`` for any difference or anything that does not decode: ``verify``'s plain
    comparison then says what it is.
    """
    try:
        return (
            _deadlines_match(folded.deadlines, deadlines)
            and _notes_match(folded.note_rows, notes)
            and _tasks_match(folded.task_rows, tasks)
        )
    except Exception:
        return False


def _deadlines_match(
    want: dict[str, tuple[Deadline, str]], rows: Sequence[tuple[Any, ...]]
) -> bool:
    if len(rows) != len(want):
        return False
    left = dict(want)
    parse, loads = datetime.fromisoformat, json.loads
    notified: dict[str, tuple[Any, ...]] = {}  # the same stored text decodes the same
    for did, wid, name, state, opened, due, rule, breach, clause, notify, seq, status in rows:
        found = left.pop(did, None)
        if found is None:
            return False
        d, expected_status = found
        roles = notified.get(notify)
        if roles is None:
            roles = notified[notify] = tuple(loads(notify))
        if (
            (wid, name, state, rule, breach, clause, seq, status)
            != (d.workflow_id, d.name, d.state, d.rule, d.breach_trigger, d.clause,
                d.opened_seq, expected_status)
            or parse(opened) != d.opened_at
            or parse(due) != d.due_at
            or roles != d.notify
        ):  # fmt: skip
            return False
    return True


def _notes_match(want: dict[str, tuple[Any, ...]], rows: Sequence[tuple[Any, ...]]) -> bool:
    """Each stored row is the expected tuple of its id, its time parsed; ids consumed once,
    so the stored and expected rows are the same set."""
    if len(rows) != len(want):
        return False
    left = dict(want)
    parse = datetime.fromisoformat
    for row in rows:
        n = left.pop(row[0], None)
        if n is None or row[:7] != n[:7] or parse(row[7]) != n[7]:
            return False
    return True


def _tasks_match(want: dict[str, tuple[Any, ...]], rows: Sequence[tuple[Any, ...]]) -> bool:
    """As :func:`_notes_match`; a task's due time may be empty (``None`` expected)."""
    if len(rows) != len(want):
        return False
    left = dict(want)
    parse = datetime.fromisoformat
    for row in rows:
        t = left.pop(row[0], None)
        if (
            t is None
            or row[:6] != t[:6]
            or row[7] != t[7]
            or (parse(row[6]) if row[6] else None) != t[6]
            or parse(row[8]) != t[8]
        ):
            return False
    return True
