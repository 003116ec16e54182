"""The private fast constructors (``qaflow._build``) build what attrs' constructors build."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from qaflow import Actor

T0 = datetime(2025, 12, 1, 9, tzinfo=UTC)
WORKER = Actor("P-1", "worker")


def test_the_fast_record_constructors_build_what_attrs_builds_and_it_stays_frozen() -> None:
    """``qaflow._build`` writes slots directly: the records are equal, field for field, to
    those attrs' constructors make, of the same class, and still refuse any change."""
    from qaflow._build import new_event, new_snapshot, new_step
    from qaflow.records import Event, Step, WorkflowSnapshot

    fields = ("W-1", 2, "comment", "submitted", "submitted", WORKER, T0, {"text": "a"})
    made = new_event(*fields, "0" * 64, "f" * 64, "key-1")
    built = Event(*fields, "0" * 64, "f" * 64, "key-1")
    assert type(made) is Event and made == built
    assert attrs.asdict(made, recurse=False) == attrs.asdict(built, recurse=False)
    before = WorkflowSnapshot("W-1", "m", "p", "1", "new", fingerprint="fp")
    snap = new_snapshot(before, "submitted", {"k": 1}, 1, T0, "f" * 64, ())
    assert snap == attrs.evolve(
        before, state="submitted", data={"k": 1}, version=1, created_at=T0, updated_at=T0,
        last_hash="f" * 64,
    )  # fmt: skip
    step = new_step(made, snap)
    assert step == Step(event=built, snapshot=snap)
    for record, name in ((made, "seq"), (snap, "state"), (step, "event")):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(record, name, None)


def test_snapshot_of_builds_the_attrs_snapshot_of_every_field() -> None:
    """``snapshot_of`` (the replay fold's per-event snapshot) equals ``WorkflowSnapshot``
    built from the same twelve fields, attribute for attribute, and stays frozen."""
    from qaflow._build import snapshot_of
    from qaflow.records import WorkflowSnapshot

    fields = (
        "W-1", "m", "p", "1", "submitted", {"k": 1}, 3, T0, T0.replace(hour=10), "f" * 64, (),
        "fp",
    )  # fmt: skip
    made, built = snapshot_of(*fields), WorkflowSnapshot(*fields)
    assert type(made) is WorkflowSnapshot and made == built
    assert attrs.astuple(made, recurse=False) == fields
    assert made != WorkflowSnapshot(*fields[:-1], "other")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.state = "new"  # type: ignore[misc]


@pytest.mark.parametrize("switch", [True, False], ids=["class-switch", "setters"])
def test_the_fast_effect_rows_equal_the_attrs_ones_and_convert_to_utc_alike(
    switch: bool,
) -> None:
    """Deadline, Task and Notification rows built by ``qaflow._build`` equal attrs' own,
    with a non-UTC time converted to UTC just as the attrs converter does, made either way."""
    from zoneinfo import ZoneInfo

    from qaflow._build import _maker
    from qaflow.records import Deadline, Notification, Task

    new_deadline = _maker(Deadline, switch=switch)
    new_task = _maker(Task, switch=switch)
    new_notification = _maker(Notification, switch=switch)

    local = T0.astimezone(ZoneInfo("Europe/London")).replace(month=7)
    d = ("D-1", "W-1", "review", "submitted", local, local, "5 WD", "escalate", "EX-01")
    made = new_deadline(*d, ("manager",), 3)
    assert made == Deadline(*d, ("manager",), 3) and made.due_at.tzinfo is UTC
    t = ("T-1", "W-1", 3, "revise", "worker", "P-1", None, "EX-04", local)
    assert new_task(*t) == Task(*t) and new_task(*t).created_at.tzinfo is UTC
    n = ("N-1", "W-1", 3, "manager", None, "document to review", "EX-01", local)
    assert new_notification(*n) == Notification(*n)
    assert new_notification(*n).created_at.tzinfo is UTC
    assert new_deadline(*d) == Deadline(*d)  # the trailing defaults are attrs' own


def test_the_shared_hash_encoder_writes_the_canonical_json_of_the_event() -> None:
    """``hash_fields`` (one C encoder built once) hashes the very text ``canonical_json``
    writes, for nested, non-ASCII and numeric payloads; a circular one is refused."""
    import hashlib

    from qaflow.records import canonical_json, hash_fields, utc_isoformat

    payloads: list[dict[str, object]] = [
        {},
        {"text": "café ✓", "n": 3, "x": 1.5, "ok": True, "none": None},
        {"b": {"z": [1, {"y": "ü"}], "a": []}, "a": "\u2028"},
    ]
    for payload in payloads:
        digest = hash_fields("W-1", 2, "t", "s", "d", WORKER, T0, payload, "0" * 64, None)
        body = ["W-1", 2, "t", "s", "d", "P-1", "worker", utc_isoformat(T0), payload]
        text = canonical_json([*body, "0" * 64, None])
        assert digest == hashlib.sha256(text.encode()).hexdigest()
    circular: dict[str, object] = {}
    circular["self"] = circular
    with pytest.raises(RecursionError):
        hash_fields("W-1", 2, "t", "s", "d", WORKER, T0, circular, "0" * 64, None)


def test_remembered_working_days_are_the_ones_computed_and_naive_stays_refused() -> None:
    """The calendar's (instant, n) memory gives what a fresh calendar computes, for the same
    instant in any zone, and never answers for a naive datetime."""
    from zoneinfo import ZoneInfo

    from qaflow.calendar import WorkingCalendar
    from qaflow.errors import ValidationError

    warm, fresh = WorkingCalendar(), WorkingCalendar()
    late = datetime(2025, 6, 27, 23, 30, tzinfo=UTC)  # Saturday 00:30 in London
    for start in (T0, late, late.astimezone(ZoneInfo("Europe/London"))):
        for n in (0, 1, 5):
            first = warm.add_working_days(start, n)
            assert warm.add_working_days(start, n) == first == fresh.add_working_days(start, n)
    with pytest.raises(ValidationError):
        warm.add_working_days(T0.replace(tzinfo=None), 5)


_MAKERS = (
    ("new_event", "Event"), ("snapshot_of", "WorkflowSnapshot"), ("new_step", "Step"),
    ("new_deadline", "Deadline"), ("new_task", "Task"), ("new_notification", "Notification"),
)  # fmt: skip


def test_records_are_made_through_their_fields_class_here() -> None:
    """On this interpreter every hot record is made as a plain instance whose class is then
    switched (no slot setter per field); asked not to switch, a maker writes each slot through
    its setter; a record with a ``__weakref__`` slot cannot switch, and a record whose fields
    validate gets no maker (a maker runs no validator)."""
    import qaflow._build as build
    from qaflow import records
    from qaflow.records import Actor as ActorRecord

    for name, cls in _MAKERS:
        switched = getattr(build, name)
        assert "_F" in switched.__globals__, name  # the plain class it fills, then switches
        record = getattr(records, cls)
        setters = build._maker(record, switch=False)
        assert "_F" not in setters.__globals__, name
        assert {f"_s_{a.name}" for a in attrs.fields(record)} <= set(setters.__code__.co_names)
    plain = type("_ActorFields", (), {"__slots__": ActorRecord.__slots__})
    assert not build._switchable(plain, ActorRecord, ["id", "role"])  # its __weakref__ slot
    with pytest.raises(TypeError, match="validator"):
        build._maker(ActorRecord)


@pytest.mark.parametrize("switch", [True, False], ids=["class-switch", "setters"])
def test_both_ways_of_making_a_record_give_the_attrs_record(
    switch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a record is made by switching a plain instance's class or, where Python
    refuses the switch, slot by slot, it is the attrs record: same class, equal, same hash,
    frozen, and it pickles and evolves like one."""
    import pickle

    import qaflow._build as build
    from qaflow import records
    from qaflow.records import Deadline, Event, Step, WorkflowSnapshot

    if not switch:
        for name, cls in _MAKERS:
            monkeypatch.setattr(build, name, build._maker(getattr(records, cls), switch=False))
    fields = ("W-1", 2, "comment", "submitted", "submitted", WORKER, T0, {"text": "a"})
    made = build.new_event(*fields, "0" * 64, "f" * 64, "key-1")
    built = Event(*fields, "0" * 64, "f" * 64, "key-1")
    deadline = build.new_deadline("D-1", "W-1", "r", None, T0, T0, "5 WD", None, None, (), 2)
    before = WorkflowSnapshot("W-1", "m", "p", "1", "new", fingerprint="fp")
    snap = build.new_snapshot(before, "submitted", {"k": 1}, 2, T0, "f" * 64, (deadline,))
    step = build.new_step(made, snap, (deadline,))
    expected = Step(
        built,
        WorkflowSnapshot(
            "W-1", "m", "p", "1", "submitted", {"k": 1}, 2, T0, T0, "f" * 64,
            (Deadline("D-1", "W-1", "r", None, T0, T0, "5 WD", None, None, (), 2),), "fp",
        ),
        (Deadline("D-1", "W-1", "r", None, T0, T0, "5 WD", None, None, (), 2),),
    )  # fmt: skip
    assert type(step) is Step and type(step.snapshot) is WorkflowSnapshot
    assert type(made) is Event and type(deadline) is Deadline
    assert (
        step == expected
        and hash(made) == hash(built)
        and hash(deadline) == hash(expected.opened[0])
    )
    assert pickle.loads(pickle.dumps(step)) == expected
    assert attrs.evolve(made, seq=3) == attrs.evolve(built, seq=3)
    for record in (made, snap, step, deadline):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(record, "workflow_id", "W-2")  # noqa: B010 - a frozen record refuses it
