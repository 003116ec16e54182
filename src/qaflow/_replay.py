"""Replay: a workflow's steps recomputed from its stored events alone.

The snapshot is a cache of the replay: starting from the initial state of the policy the
workflow began under, each event goes through :func:`qaflow._compute.replay_step`, the same
interpreter live commands use, without the live checks. A ``policy_migrated`` event switches
the spec from the next event on. :mod:`qaflow._integrity` compares the result with the stored
snapshot and rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import attrs

from qaflow._compute import replay_step
from qaflow._fold import event_tuples, fold
from qaflow._specs import SpecRegistry
from qaflow.records import Event, Step, WorkflowSnapshot
from qaflow.spec import POLICY_MIGRATED
from qaflow.store import Store

__all__ = ["blank_of", "last_snapshot", "replayed", "stored_replay"]


def blank_of(specs: SpecRegistry, head: WorkflowSnapshot, events: list[Event]) -> WorkflowSnapshot:
    """The snapshot ``events`` start from: the initial state of the workflow's first policy.

    ``head`` is the stored snapshot (for the machine, and the policy when none was migrated).
    """
    policy, version = head.policy, head.policy_version
    first_move = next((e for e in events if e.trigger == POLICY_MIGRATED), None)
    if first_move is not None:
        policy = first_move.payload["from_policy"]
        version = first_move.payload["from_version"]
    first = specs.pinned(
        head
        if first_move is None
        else attrs.evolve(head, policy=policy, policy_version=version, fingerprint="")
    )
    return WorkflowSnapshot(
        workflow_id=head.workflow_id,
        machine=head.machine,
        policy=policy,
        policy_version=version,
        state=first.initial,
        fingerprint=first.fingerprint if head.fingerprint else "",
    )


def replayed(
    specs: SpecRegistry,
    blank: WorkflowSnapshot,
    events: Iterable[Event],
    *,
    hashes_checked: bool = False,
) -> Iterator[Step]:
    """Each step the events make of ``blank``, in order.

    ``hashes_checked``: the caller has checked every event's hash against its content, so an
    event the replay reproduces is the step's event as stored (hashed once, not twice).
    """
    spec = specs.pinned(blank)
    snapshot = blank
    for event in events:
        target = None
        if event.trigger == POLICY_MIGRATED:
            target = specs.migration_target(snapshot, event.payload)
        step = replay_step(
            spec,
            snapshot,
            event,
            target=target,
            hash_checked=hashes_checked,
        )
        yield step
        snapshot = step.snapshot
        if target is not None:
            spec = specs.pinned(snapshot)


def last_snapshot(
    specs: SpecRegistry, head: WorkflowSnapshot, events: list[Event]
) -> WorkflowSnapshot:
    """The snapshot after ``events``, keeping no step alive on the way."""
    blank = blank_of(specs, head, events)
    if not events:
        raise IndexError(f"workflow {head.workflow_id!r} has no events to replay")
    snapshot = head
    for step in replayed(specs, blank, events):
        snapshot = step.snapshot
    return snapshot


def stored_replay(specs: SpecRegistry, store: Store, head: WorkflowSnapshot) -> WorkflowSnapshot:
    """The snapshot replaying the stored events of ``head``'s workflow reaches.

    The fast fold (:mod:`qaflow._fold`, from the rows as stored when the store offers
    ``event_rows``) gives it for an intact history; anything it does not vouch for is
    replayed step by step by :func:`last_snapshot`, exactly as before.
    """
    wid = head.workflow_id
    read = getattr(store, "event_rows", None)
    events = None
    if callable(read):
        rows = read(wid)
    else:
        events = store.events(wid)
        rows = event_tuples(events)
    folded = fold(specs, head, rows, rows_wanted=False)
    if folded is not None and folded.snapshot is not None:
        return folded.snapshot
    return last_snapshot(specs, head, store.events(wid) if events is None else events)
