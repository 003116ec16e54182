"""The escalation machine's vocabulary: the named guards, updates and effects its specs cite.

Every entry is a module-level function registered in :mod:`qaflow.vocabulary` and takes the
command's context and the spec's plain-data arguments, so an escalation MachineSpec holds no
closure: it is serialisable and has a stable fingerprint. Updates are pure: each returns new
values and never changes the old ones in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from qaflow import vocabulary
from qaflow._timetext import utc_isoformat as _iso
from qaflow.calendar import Duration, WorkingCalendar
from qaflow.errors import ValidationError
from qaflow.spec import Context, DeadlineRule, Effect, ExtendDeadline, OpenDeadline

__all__ = ["ID_MAX", "OVERDUE", "RESPONSE_DEADLINE"]

RESPONSE_DEADLINE: Final = "response"
OVERDUE: Final = "response_overdue"
ID_MAX: Final = 64
_NOBODY: Final[dict[str, str]] = {}
_UTC: Final = UTC
_DUE: Final[dict[tuple[str, datetime, WorkingCalendar], str]] = {}


def _history(ctx: Context) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = list(ctx.data.get("history", ()))
    return history


def _last(ctx: Context) -> dict[str, Any]:
    """The current stage's history entry, to read (never changed in place), or ``{}``."""
    history = ctx.data.get("history")
    if not history:
        return {}
    last: dict[str, Any] = history[-1]
    return last


def _with_last(ctx: Context, **changes: Any) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = list(ctx.data.get("history", ()))  # _history, inline
    entry = dict(history[-1])  # {**last, **changes}, without a dict display
    entry.update(changes)
    history[-1] = entry
    return history


def _pending(ctx: Context) -> dict[str, Any] | None:
    extensions = _last(ctx).get("extensions", ())
    if extensions and extensions[-1].get("decision") is None:
        pending: dict[str, Any] = extensions[-1]
        return pending
    return None


def _with_pending(ctx: Context, **changes: Any) -> list[dict[str, Any]]:
    extensions = list(_last(ctx)["extensions"])
    extensions[-1] = {**extensions[-1], **changes}
    return _with_last(ctx, extensions=extensions)


def _parse(text: object) -> Duration | None:
    try:
        return Duration.parse(text)
    except (ValidationError, TypeError, AttributeError):
        return None


def people(ctx: Context, args: Mapping[str, Any] = _NOBODY) -> dict[str, str]:
    """The ``<role>_id`` keys a command's ``people`` records."""
    given = ctx.payload.get("people")
    if not given:
        return {}
    return {f"{role}_id": person for role, person in sorted(given.items())}


# --- guards ------------------------------------------------------------------------------------


@vocabulary.guard("escalation.to_is")
def _to_is(ctx: Context, args: Mapping[str, Any]) -> bool:
    # the arguments and the payload as the dicts they are: compiled, look-ups without a call
    kw: dict[str, Any] = args if type(args) is dict else dict(args)
    given = ctx.payload
    payload: dict[str, Any] = given if type(given) is dict else dict(given)
    target = kw["target"]
    default = target if kw.get("default") else None
    return bool(payload.get("to", default) == target)


@vocabulary.guard("escalation.people")
def _people_ok(ctx: Context, args: Mapping[str, Any]) -> bool:
    payload = ctx.payload
    body: dict[str, Any] = payload if type(payload) is dict else dict(payload)
    given = body.get("people", _NOBODY)
    if given is _NOBODY:
        return True
    allowed = args["allowed"]
    return isinstance(given, dict) and all(
        role in allowed and isinstance(pid, str) and 0 < len(pid.strip()) <= ID_MAX
        for role, pid in given.items()
    )


@vocabulary.guard("escalation.details_when_other")
def _details(ctx: Context, args: Mapping[str, Any]) -> bool:
    given = ctx.payload
    payload: dict[str, Any] = given if type(given) is dict else dict(given)
    return payload["reason"] != "other" or bool(str(payload.get("details", "")).strip())


@vocabulary.guard("escalation.no_response_yet")
def _no_response(ctx: Context, args: Mapping[str, Any]) -> bool:
    return _last(ctx).get("response") is None


@vocabulary.guard("escalation.breach_names_response")
def _names_response(ctx: Context, args: Mapping[str, Any]) -> bool:
    wanted = ctx.payload.get("deadline_id")
    return any(d.id == wanted and d.name == RESPONSE_DEADLINE for d in ctx.snapshot.deadlines)


@vocabulary.guard("escalation.extension_pending")
def _is_pending(ctx: Context, args: Mapping[str, Any]) -> bool:
    return _pending(ctx) is not None


@vocabulary.guard("escalation.no_extension_pending")
def _not_pending(ctx: Context, args: Mapping[str, Any]) -> bool:
    return _pending(ctx) is None


@vocabulary.guard("escalation.under_extension_limit")
def _under_limit(ctx: Context, args: Mapping[str, Any]) -> bool:
    if args["per"] == "escalation":
        granted = int(ctx.data.get("extensions_granted", 0))
    else:
        granted = sum(1 for e in _last(ctx).get("extensions", ()) if e.get("decision") == "granted")
    return granted < int(args["max_count"])


@vocabulary.guard("escalation.length_within")
def _length_within(ctx: Context, args: Mapping[str, Any]) -> bool:
    """``payload[key]`` is a duration in the unit of ``max``, from ``min`` (or 1) to ``max``."""
    length = _parse(ctx.payload.get(args["key"], ""))
    limit = Duration.parse(args["max"])
    low = Duration.parse(args["min"]).amount if args.get("min") else 1
    return length is not None and length.unit == limit.unit and low <= length.amount <= limit.amount


@vocabulary.guard("escalation.endorsed")
def _endorsed(ctx: Context, args: Mapping[str, Any]) -> bool:
    return _last(ctx).get("endorsement") is not None


@vocabulary.guard("escalation.not_endorsed")
def _not_endorsed(ctx: Context, args: Mapping[str, Any]) -> bool:
    return _last(ctx).get("endorsement") is None


def _roles_recorded(ctx: Context, key: str) -> set[str]:
    """The roles of the people recorded under ``key`` at the current stage."""
    return {item["role"] for item in _last(ctx).get(key, ())}


def _by_actor(ctx: Context, key: str) -> dict[str, Any]:
    """The current stage with the actor's act (when, who, in which role) added under ``key``."""
    made = {"at": _iso(ctx.at), "by": ctx.actor.id, "role": ctx.actor.role}
    return {"history": _with_last(ctx, **{key: [*_last(ctx).get(key, ()), made]})}


@vocabulary.guard("escalation.endorsed_by_all")
def _endorsed_by_all(ctx: Context, args: Mapping[str, Any]) -> bool:
    return set(args["roles"]) <= _roles_recorded(ctx, "endorsements")


@vocabulary.guard("escalation.not_endorsed_by_role")
def _not_endorsed_by_role(ctx: Context, args: Mapping[str, Any]) -> bool:
    return ctx.actor.role not in _roles_recorded(ctx, "endorsements")


@vocabulary.guard("escalation.consulted")
def _consulted(ctx: Context, args: Mapping[str, Any]) -> bool:
    return bool(_last(ctx).get("consultations"))


@vocabulary.guard("escalation.all_agreed")
def _all_agreed(ctx: Context, args: Mapping[str, Any]) -> bool:
    return set(args["roles"]) <= _roles_recorded(ctx, "agreements")


@vocabulary.guard("escalation.not_yet_agreed_by_role")
def _not_agreed(ctx: Context, args: Mapping[str, Any]) -> bool:
    return ctx.actor.role not in _roles_recorded(ctx, "agreements")


@vocabulary.guard("escalation.track_not_made")
def _track_free(ctx: Context, args: Mapping[str, Any]) -> bool:
    return all(t["track"] != args["track"] for t in ctx.data.get("referrals", ()))


# --- updates -----------------------------------------------------------------------------------


@vocabulary.update("escalation.raise")
def _raise(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    # the arguments and the payload as the dicts they are: compiled, look-ups without a call
    kw: dict[str, Any] = args if type(args) is dict else dict(args)
    given = ctx.payload
    payload: dict[str, Any] = given if type(given) is dict else dict(given)
    actor = ctx.actor
    role: str = actor.role
    person: str = actor.id
    subject = kw["subject"]
    data: dict[str, Any] = {
        "ladder": kw["ladder"],
        "kind": kw["kind"],
        "subject_role": subject,
        "subject_id": payload["subject_id"],
        f"{subject}_id": payload["subject_id"],
        "raiser_role": role,
        "raiser_id": person,
        f"{role}_id": person,
        "reason": payload["reason"],
        "details": payload.get("details"),
        "raised_at": _iso(ctx.at),
        "history": [],
        "level": None,
        "extensions_granted": 0,
        "outcome": None,
        "closed_at": None,
        "working_days_open": None,
        "working_days_to_resolution": None,
    }
    if kw.get("agreed"):
        data["agreed_response"] = str(Duration.parse(payload["response_time"]))
    if payload.get("consulted"):
        data["consulted"] = payload["consulted"]
    if payload.get("people"):
        data.update(people(ctx))
    return data


@vocabulary.update("escalation.people")
def _record_people(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    payload = ctx.payload
    body: dict[str, Any] = payload if type(payload) is dict else dict(payload)
    return people(ctx) if body.get("people") else {}  # none given: nothing to record


@vocabulary.update("escalation.enter")
def _enter(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Append a stage visit to the history (closing the one before)."""
    # the arguments and the payload as the dicts they are: compiled, look-ups without a call
    kw: dict[str, Any] = args if type(args) is dict else dict(args)
    data = ctx.data
    moment = ctx.at
    at = _iso(moment)
    history: list[dict[str, Any]] = list(data.get("history", ()))  # _history, inline
    if history:
        last = history[-1]
        if last.get("left_at") is None:
            left = dict(last)  # {**last, "left_at": at}
            left["left_at"] = at
            history[-1] = left
    response = data.get("agreed_response") if kw.get("agreed") else kw.get("response")
    due = None
    if response is not None:
        # Many escalations enter a stage at the same moment: the due time is remembered.
        calendar = ctx.spec.calendar
        key = (response, moment, calendar)
        due = _DUE.get(key)
        if due is None:
            if len(_DUE) >= 4096:
                _DUE.clear()
            length = Duration.parse(response)
            if length.unit == "WD" and moment.tzinfo is _UTC:  # Duration.after's own path
                ends = calendar.add_working_days(moment, length.amount)
            else:
                ends = length.after(moment, calendar)
            due = _DUE[key] = _iso(max(ends, moment))
    payload = ctx.payload
    body: dict[str, Any] = payload if type(payload) is dict else dict(payload)
    level = kw["level"]
    entry = {
        "state": ctx.dest,
        "level": level,
        "entered_at": at,
        "via": ctx.trigger,
        "holders": list(kw["holders"]),
        "due_at": due,
        "note": body.get("note"),
        "response": None,
        "extensions": [],
        "breaches": 0,
        "breached_at": None,
        "left_at": None,
    }
    history.append(entry)  # a new list: the snapshot's own is never changed
    return {"history": history, "level": level}


@vocabulary.update("escalation.close")
def _close(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """Record the outcome, when, and the working days the escalation was open."""
    outcome = args["outcome"]
    moment = ctx.at
    at = _iso(moment)
    history = _history(ctx)
    if outcome != "referred" and history:
        last = history[-1]
        if last.get("left_at") is None:
            left = dict(last)  # {**last, "left_at": at}
            left["left_at"] = at
            history[-1] = left
    raised = datetime.fromisoformat(ctx.data["raised_at"])
    days = ctx.spec.calendar.working_days_between(raised, moment)
    return {
        "history": history,
        "outcome": outcome,
        "closed_at": at,
        "working_days_open": days,
        "working_days_to_resolution": days if outcome == "resolved" else None,
    }


@vocabulary.update("escalation.respond")
def _respond(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    response = {"at": _iso(ctx.at), "by": ctx.actor.id, "text": ctx.payload["response"]}
    history: list[dict[str, Any]] = list(ctx.data.get("history", ()))  # _with_last, inline
    entry = dict(history[-1])
    entry["response"] = response
    history[-1] = entry
    return {"history": history}


@vocabulary.update("escalation.breach")
def _breach(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    entry = _last(ctx)
    first = entry.get("breached_at") or _iso(ctx.at)
    breaches = int(entry.get("breaches", 0)) + 1
    return {"history": _with_last(ctx, breaches=breaches, breached_at=first)}


@vocabulary.update("escalation.request_extension")
def _request(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    length = _parse(ctx.payload.get("length", ""))
    assert length is not None
    item = {
        "requested_at": _iso(ctx.at),
        "requested_by": ctx.actor.id,
        "length": str(length),
        "decision": None,
        "decided_at": None,
        "due_at": None,
        "note": ctx.payload.get("note"),
        "decision_note": None,
    }
    extensions = [*_last(ctx).get("extensions", ()), item]
    return {"history": _with_last(ctx, extensions=extensions)}


def _pending_length(ctx: Context) -> Duration:
    item = _pending(ctx)
    assert item is not None
    return Duration.parse(item["length"])


@vocabulary.update("escalation.grant_extension")
def _grant(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    length = _pending_length(ctx)
    current = ctx.open_deadline(RESPONSE_DEADLINE)
    start = current.due_at if current is not None else ctx.at
    due = _iso(max(length.after(start, ctx.calendar), ctx.at))
    history = _with_pending(
        ctx,
        decision="granted",
        decided_at=_iso(ctx.at),
        due_at=due,
        decision_note=ctx.payload.get("note"),
    )
    history[-1] = {**history[-1], "due_at": due}
    return {
        "history": history,
        "extensions_granted": int(ctx.data.get("extensions_granted", 0)) + 1,
    }


@vocabulary.update("escalation.refuse_extension")
def _refuse(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    history = _with_pending(
        ctx, decision="refused", decided_at=_iso(ctx.at), decision_note=ctx.payload.get("note")
    )
    return {"history": history}


@vocabulary.update("escalation.endorse")
def _endorse(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    endorsement = {"at": _iso(ctx.at), "by": ctx.actor.id, "role": ctx.actor.role}
    return {"history": _with_last(ctx, endorsement=endorsement)}


@vocabulary.update("escalation.endorse_role")
def _endorse_role(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    return _by_actor(ctx, "endorsements")


@vocabulary.update("escalation.consult")
def _consult(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    return _by_actor(ctx, "consultations")


@vocabulary.update("escalation.agree")
def _agree(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    return _by_actor(ctx, "agreements")


@vocabulary.update("escalation.refer_track")
def _refer(ctx: Context, args: Mapping[str, Any]) -> Mapping[str, Any]:
    made = {
        "track": args["track"],
        "at": _iso(ctx.at),
        "by": ctx.actor.id,
        "level": ctx.data.get("level"),
        "note": ctx.payload.get("note"),
    }
    return {"referrals": [*ctx.data.get("referrals", ()), made]}


# --- effects and durations ---------------------------------------------------------------------


@vocabulary.effects("escalation.extend")
def _extend(ctx: Context, args: Mapping[str, Any]) -> Iterable[Effect]:
    """Move the open response deadline by the granted time; once a breach has closed it, the
    granted time runs from now as a new deadline that leaving the stage closes."""
    length = _pending_length(ctx)
    if ctx.open_deadline(RESPONSE_DEADLINE) is not None:
        return (ExtendDeadline(RESPONSE_DEADLINE, length),)
    rule = DeadlineRule(
        RESPONSE_DEADLINE,
        length,
        breach_trigger=OVERDUE,
        notify=tuple(args["notify"]),
        clause=args.get("clause"),
    )
    return (OpenDeadline(rule),)


@vocabulary.duration("escalation.agreed_response")
def _agreed(ctx: Context, args: Mapping[str, Any]) -> Duration:
    """The response timescale agreed at raise (within the ladder's bounds)."""
    return Duration.parse(ctx.data.get("agreed_response") or ctx.payload["response_time"])
