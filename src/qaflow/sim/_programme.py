"""A council's audit programme, played month by month on the real engine and policies.

:func:`run_programme` plays an audit programme for a generated council
(:func:`~qaflow.sim._council.generate_council`): on the first working day of each month
business support allocates one audit to each manager and the audits, moderations and
escalations of the month are played by the actors of :mod:`qaflow.sim` (see
:mod:`qaflow.programme`). Every command goes through the engine with the council's
directory; time is a virtual clock and one seeded :class:`random.Random` draws everything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import attrs

from qaflow.allocation import month_key
from qaflow.calendar import LONDON
from qaflow.errors import ValidationError
from qaflow.machines import audit as A
from qaflow.policies import (
    SHIPPED_ESCALATION_FILES,
    shipped_audit_procedures,
    shipped_escalation_procedure,
    shipped_escalation_procedures,
)
from qaflow.procedure import AuditPolicy, Grade, ModerationPolicy, ProcedureFile
from qaflow.registry import shipped_specs
from qaflow.sim._answers import can_give
from qaflow.sim._audits import AuditPlay, ModerationPlay
from qaflow.sim._behaviour import ProgrammeBehaviour
from qaflow.sim._council import Council
from qaflow.sim._raising import EscalationPlay, ladder_specs
from qaflow.sim._run import Run
from qaflow.spec import MachineSpec
from qaflow.store import MemoryStore, Store

__all__ = ["ProgrammeResult", "period_bounds", "run_programme"]


# --- the result -------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ProgrammeResult:
    """What a programme run did: the council, the period and the counts of what happened.

    ``start`` and ``end`` bound the period, ``[start, end)``, as aware UTC datetimes (local
    midnight in London). The counts are of commands this run fired; the store holds the rest.
    """

    council: Council
    policy: str
    policy_version: str
    seed: int
    months: int
    start: datetime
    end: datetime
    id_prefix: str
    audits_allocated: int
    audits_completed: int
    audits_cancelled: int
    audits_followed_up: int
    auditors_unallocated: int
    moderations_opened: int
    moderations_finalised: int
    moderations_agreed: int
    escalations_raised: int
    escalations_closed: int
    deadline_breaches: int
    tasks_completed: int
    events_written: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the counts, the period and the council's size (no directory)."""
        out: dict[str, Any] = {
            a.name: getattr(self, a.name)
            for a in attrs.fields(ProgrammeResult)
            if a.name not in ("council", "start", "end")
        }
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat()
        out["council"] = {"seed": self.council.seed, **self.council.summary()}
        return out


# --- time -------------------------------------------------------------------------------------


def _as_start(value: date | datetime) -> datetime:
    """A period start: a date is local midnight in London; a datetime must be aware."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValidationError(
                field="start", value=value.isoformat(), expected="an aware datetime or a date"
            )
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), LONDON).astimezone(UTC)
    raise ValidationError(field="start", value=value, expected="a date or an aware datetime")


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_bounds(start: date | datetime, months: int) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``months`` calendar months from ``start`` (London local midnight)."""
    begin = _as_start(start)
    local = begin.astimezone(LONDON).date()
    index = local.year * 12 + local.month - 1 + months
    year, month = index // 12, index % 12 + 1
    end_day = date(year, month, min(local.day, _days_in(year, month)))
    end = datetime.combine(end_day, time(0), LONDON).astimezone(UTC)
    return begin, end


def _days_in(year: int, month: int) -> int:
    nxt = _add_months(date(year, month, 1), 1)
    return (nxt - timedelta(days=1)).day


def _moderation_for(policy: AuditPolicy) -> ModerationPolicy:
    for candidate in shipped_audit_procedures():
        if candidate.audit == policy:
            return candidate.moderation
    raise ValidationError(
        field="moderation",
        value=policy.name,
        expected="a ModerationPolicy for this audit policy (only shipped ones are found)",
    )


def _code(policy: AuditPolicy) -> str:
    """The council's clause prefix (``BX`` of ``BX-AUD-03``), else its name in capitals."""
    for clause in (*policy.stage_clauses.values(), policy.monthly_clause):
        if isinstance(clause, str) and "-" in clause:
            return clause.split("-", 1)[0]
    return policy.name.upper()


def _knobs(behaviour: object, given: Mapping[str, object]) -> ProgrammeBehaviour:
    if behaviour is None:
        behaviour = ProgrammeBehaviour()
    elif not isinstance(behaviour, ProgrammeBehaviour):
        raise ValidationError(field="behaviour", value=behaviour, expected="a ProgrammeBehaviour")
    changes = {k: v for k, v in given.items() if v is not None}
    return attrs.evolve(behaviour, **changes) if changes else behaviour  # type: ignore[arg-type]


def run_programme(
    council: Council,
    policy: AuditPolicy | None = None,
    *,
    months: int,
    start: date | datetime,
    seed: int,
    store: Store | None = None,
    behaviour: ProgrammeBehaviour | None = None,
    escalations: ProcedureFile | None = None,
    grades: Mapping[Grade, float] | None = None,
    feedback_rate: float | None = None,
    escalation_rate: float | None = None,
    cancel_rate: float | None = None,
    slow_auditor_share: float | None = None,
    moderation_agreement: float | None = None,
    task_on_time_rate: float | None = None,
    safeguarding_rate: float | None = None,
    moderation: ModerationPolicy | None = None,
    id_prefix: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ProgrammeResult:
    """Play ``months`` of ``council``'s audit programme under ``policy`` into ``store``.

    ``policy`` defaults to the first audit policy in the catalogue of :mod:`qaflow.policies`;
    ``escalations`` (a procedure file's ladders and the policy they pin) to the ladders the
    catalogue ships for the same council, else the first council that ships ladders. The
    knobs are ``behaviour`` (:class:`~qaflow.sim.ProgrammeBehaviour`); ``grades``,
    ``feedback_rate``, ``escalation_rate``, ``cancel_rate``, ``slow_auditor_share``,
    ``moderation_agreement``, ``task_on_time_rate`` and ``safeguarding_rate``, when given,
    override its fields of the same name. ``progress(days, total)``, when given, is called
    as the simulated days pass.

    Workflow ids start with ``id_prefix`` (default the council's clause prefix, ``"BX-"``
    or ``"BK-"``): audits ``BX-AUD-2026-01-001``, moderations ``BX-MOD-2026-02-001``,
    escalations ``BX-ESC-CPCHAIR-2026-01-001``; they must be new in ``store`` (a second run
    into the same store needs another prefix). ``tick`` runs on the whole store, as a
    host's would. Raises :class:`~qaflow.errors.ValidationError` naming a bad argument
    before anything is written.
    """
    if not isinstance(council, Council):
        raise ValidationError(field="council", value=council, expected="a Council")
    if policy is None:
        policy = shipped_audit_procedures()[0].audit
    if not isinstance(policy, AuditPolicy):
        raise ValidationError(field="policy", value=policy, expected="an AuditPolicy")
    n_months = _positive("months", months, 120)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValidationError(field="seed", value=seed, expected="an int")
    begin, end = period_bounds(start, n_months)
    given = {
        "grades": grades,
        "feedback_rate": feedback_rate,
        "escalation_rate": escalation_rate,
        "cancel_rate": cancel_rate,
        "slow_auditor_share": slow_auditor_share,
        "moderation_agreement": moderation_agreement,
        "task_on_time_rate": task_on_time_rate,
        "safeguarding_rate": safeguarding_rate,
    }
    knobs = _knobs(behaviour, given)
    usable = {g: w for g, w in knobs.grades.items() if can_give(policy.form, g) and w > 0}
    if not usable:
        raise ValidationError(
            field="grades",
            value=sorted(g.name for g in knobs.grades),
            expected="a grade the form gives",
        )
    moderation = moderation or _moderation_for(policy)
    if moderation.audit != policy:
        raise ValidationError(
            field="moderation", value=moderation.name, expected=f"moderation of {policy.name!r}"
        )
    if escalations is None:
        escalations = (
            shipped_escalation_procedure(policy.name)
            if policy.name in SHIPPED_ESCALATION_FILES
            else shipped_escalation_procedures()[0]
        )
    elif not isinstance(escalations, ProcedureFile):
        raise ValidationError(
            field="escalations", value=escalations, expected="a ProcedureFile with ladders"
        )
    prefix = f"{_code(policy)}-" if id_prefix is None else id_prefix
    if not isinstance(prefix, str) or len(prefix) > 32:
        raise ValidationError(field="id_prefix", value=prefix, expected="text of at most 32")
    specs: list[MachineSpec] = list(shipped_specs())
    audit_spec = next(
        (s for s in specs if s.key == (A.MACHINE, policy.name, policy.version)), None
    ) or A.audit_spec(policy)
    specs.append(audit_spec)
    ladders = ladder_specs(escalations.ladders, escalations.policy, specs)
    run = Run(
        council,
        specs,
        MemoryStore() if store is None else store,
        policy.policy.calendar,
        knobs,
        seed=seed,
        begin=begin,
        end=end,
        prefix=prefix,
    )
    audits = AuditPlay(run, policy, audit_spec, usable)
    moderations = ModerationPlay(run, audits, moderation)
    raising = EscalationPlay(run, ladders)
    local = begin.astimezone(LONDON).date()
    first = date(local.year, local.month, 1)
    for m in range(n_months):
        day = run.calendar.add_working_days_to_date(_add_months(first, m), 0)
        when = max(run.local(day, time(8, 30)), begin)
        month = month_key(when.astimezone(LONDON).date())

        def open_month(index: int = m, when: datetime = when, month: str = month) -> None:
            audits.allocate(index, month, when)
            run.later(when + timedelta(hours=2), lambda: moderations.sample(month))
            raising.raise_escalations(month, when)

        run.later(when, open_month)
    run.play(progress)
    c = run.counts
    return ProgrammeResult(
        council=council,
        policy=policy.name,
        policy_version=policy.version,
        seed=seed,
        months=n_months,
        start=begin,
        end=end,
        id_prefix=prefix,
        audits_allocated=c.get("audits_allocated", 0),
        audits_completed=c.get("audits_completed", 0),
        audits_cancelled=c.get("audits_cancelled", 0),
        audits_followed_up=c.get("audits_followed_up", 0),
        auditors_unallocated=c.get("unallocated", 0),
        moderations_opened=c.get("moderations_opened", 0),
        moderations_finalised=c.get("moderations_finalised", 0),
        moderations_agreed=c.get("moderations_agreed", 0),
        escalations_raised=c.get("escalations_raised", 0),
        escalations_closed=c.get("escalations_closed", 0),
        deadline_breaches=c.get("breaches", 0),
        tasks_completed=c.get("tasks_completed", 0),
        events_written=c.get("events", 0),
    )


def _positive(name: str, value: object, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValidationError(field=name, value=value, expected=f"a whole number in 1..{high}")
    return value
