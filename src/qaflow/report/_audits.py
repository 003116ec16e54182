"""Audit and moderation figures of a period: how much was done, grades, practice areas,
family feedback (BX-AUD-07), distance travelled (BX-AUD-03), moderation agreement (BX-MOD-04).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qaflow.errors import ValidationError
from qaflow.procedure import Grade, Judgement
from qaflow.procedure._audit import RESPONDENTS
from qaflow.report._escalations import closed_at
from qaflow.report._read import AUDIT_ENDS, Period, Workflow
from qaflow.report._records import (
    Activity,
    DistanceTravelled,
    FeedbackRespondent,
    GradeCount,
    ModerationSummary,
    QuestionScore,
    StatementScore,
)
from qaflow.report._stats import counts, grade, in_period, mean, rate

__all__ = [
    "activity",
    "completed",
    "distance",
    "family_feedback",
    "grade_of",
    "graded",
    "grades",
    "moderation",
    "practice_areas",
]


def activity(p: Period) -> Activity:
    s, e = p.start, p.end
    audits = p.flows["audit"]

    def n(flows: list[Workflow], trigger: str) -> int:
        return sum(1 for w in flows if w.any_in(trigger, s) is not None)

    open_at_end = p.quiet_open_audits + sum(
        1 for w in audits if all(w.first(t) is None for t in AUDIT_ENDS)
    )
    escalations = p.flows["escalation"]
    raised = sum(1 for w in escalations if in_period(w.events[0].at, s, e))
    closed = sum(1 for w in escalations if in_period(closed_at(p, w), s, e))
    return Activity(
        audits_allocated=sum(1 for w in audits if in_period(w.events[0].at, s, e)),
        audits_graded=n(audits, "grade"),
        audits_completed=n(audits, "complete"),
        audits_cancelled=n(audits, "cancel"),
        audits_followed_up=n(audits, "follow_up"),
        audits_open_at_end=open_at_end,
        moderations_sampled=sum(
            1 for w in p.flows["moderation"] if in_period(w.events[0].at, s, e)
        ),
        moderations_finalised=n(p.flows["moderation"], "finalise"),
        moderations_cancelled=n(p.flows["moderation"], "cancel"),
        escalations_raised=raised,
        escalations_closed=closed,
    )


def graded(p: Period) -> list[Workflow]:
    return [w for w in p.flows["audit"] if w.any_in("grade", p.start) is not None]


def grade_of(p: Period, w: Workflow) -> tuple[Grade | None, Grade | None]:
    """An audit's grade as it stands at the end (moderated) and as the auditor gave it."""
    history = [
        g
        for g in w.snapshot.data.get("grades", [])
        if isinstance(g, dict) and w.at.get(int(g.get("seq", 0)), p.end) < p.end
    ]
    if history:
        return grade(history[-1].get("grade")), grade(history[0].get("grade"))
    only = grade(w.snapshot.data.get("grade"))
    return only, only


def grades(p: Period) -> tuple[tuple[GradeCount, ...], tuple[GradeCount, ...]]:
    """The grade as it stands at the end (moderated) and as the auditor gave it."""
    now: list[Grade] = []
    first: list[Grade] = []
    for w in graded(p):
        current, original = grade_of(p, w)
        if current is not None:
            now.append(current)
        if original is not None:
            first.append(original)
    return counts(now), counts(first)


def practice_areas(p: Period) -> tuple[QuestionScore, ...]:
    """Per question of the health check and areas of practice, averaged over audits."""
    scores: dict[str, list[int]] = {}
    judgements: dict[str, list[str]] = {}
    sections: dict[str, str | None] = {}
    order: dict[str, tuple[int, str]] = {}
    for w in graded(p):
        policy = p.audit_policies.get(w.snapshot.policy)
        answers = w.snapshot.data.get("answers")
        if not isinstance(answers, dict):
            continue
        for qid, answer in answers.items():
            if not isinstance(answer, dict):
                continue
            if policy is not None:
                form = policy.form
                try:
                    question = form.question(qid)
                except ValidationError:
                    continue
                stage = form.section(question.section).stage
                if stage not in ("health_check", "meeting") or qid == form.grading_question:
                    continue
                sections[qid] = question.section
                order.setdefault(qid, (list(form.questions).index(question), qid))
            elif qid in ("overall",):
                continue
            else:
                sections.setdefault(qid, None)
                order.setdefault(qid, (10_000, qid))
            score = answer.get("score")
            judgement = answer.get("judgement")
            if isinstance(score, int) and not isinstance(score, bool):
                scores.setdefault(qid, []).append(score)
            elif isinstance(judgement, str):
                judgements.setdefault(qid, []).append(judgement)
    out: list[QuestionScore] = []
    for qid in sorted(set(scores) | set(judgements), key=lambda q: order.get(q, (0, q))):
        if qid in scores:
            values = scores[qid]
            out.append(
                QuestionScore(qid, sections.get(qid), "scale_0_10", len(values), mean(values))
            )
        else:
            js = judgements[qid]
            exceeds = js.count(Judgement.EXCEEDS_GOOD.value)
            meets = js.count(Judgement.MEETS_GOOD.value)
            out.append(
                QuestionScore(
                    qid,
                    sections.get(qid),
                    "judgement",
                    len(js),
                    exceeds_good=exceeds,
                    meets_good=meets,
                    does_not_meet_good=js.count(Judgement.DOES_NOT_MEET_GOOD.value),
                    share_good=rate(exceeds + meets, len(js)),
                )
            )
    return tuple(out)


def completed(p: Period) -> list[Workflow]:
    return [w for w in p.flows["audit"] if w.any_in("complete", p.start) is not None]


def family_feedback(
    p: Period,
) -> tuple[tuple[StatementScore, ...], int, int, tuple[FeedbackRespondent, ...]]:
    """BX-AUD-07, over audits completed in the period: the mean score of each statement over
    every answer set recorded with ``record_feedback`` (each family member's set counts), the
    audits with feedback and those with the recorded reason it could not be had, and the sets
    per respondent with whether the parent/carer agreed to the child's."""
    statements: list[str] = []
    for known in p.audit_policies.values():
        if known.feedback is not None:
            statements += [q for q in known.feedback.questions if q not in statements]
    scores: dict[str, list[int]] = {q: [] for q in statements}
    obtained = not_obtained = 0
    tally: dict[str, list[int]] = {}  # respondent -> [sets, audits, agreed, not agreed]
    for w in completed(p):
        policy = p.audit_policies.get(w.snapshot.policy)
        if policy is None or policy.feedback is None:
            continue
        data = w.snapshot.data
        sets = data.get("feedback") if isinstance(data.get("feedback"), list) else []
        assert isinstance(sets, list)
        got = False
        seen: set[str] = set()
        for entry in sets:
            if not isinstance(entry, dict) or not isinstance(entry.get("respondent"), str):
                continue
            who = entry["respondent"]
            counts_of = tally.setdefault(who, [0, 0, 0, 0])
            counts_of[0] += 1
            if who not in seen:
                seen.add(who)
                counts_of[1] += 1
            if entry.get("agreed") is True:
                counts_of[2] += 1
            elif entry.get("agreed") is False:
                counts_of[3] += 1
            answers = entry.get("answers") if isinstance(entry.get("answers"), dict) else {}
            assert isinstance(answers, dict)
            for qid in policy.feedback.questions:
                answer = answers.get(qid)
                score = answer.get("score") if isinstance(answer, dict) else None
                if isinstance(score, int) and not isinstance(score, bool):
                    scores[qid].append(score)
                    got = True
        if got:
            obtained += 1
        elif data.get("feedback_reason"):
            not_obtained += 1
    out = tuple(StatementScore(q, len(v), mean(v)) for q, v in scores.items())
    order = {r: i for i, r in enumerate(RESPONDENTS)}
    who_gave = tuple(
        FeedbackRespondent(r, *tally[r])
        for r in sorted(tally, key=lambda r: (order.get(r, len(order)), r))
    )
    return out, obtained, not_obtained, who_gave


def distance(p: Period) -> tuple[DistanceTravelled, ...]:
    """BX-AUD-03: first and last self-assessment in the period of each practitioner."""
    by_worker: dict[str, list[tuple[datetime, str, dict[str, Any]]]] = {}
    scales: list[str] = []
    for w in p.flows["audit"]:
        policy = p.audit_policies.get(w.snapshot.policy)
        if policy is None or not policy.has_self_assessment:
            continue
        submitted = w.any_in("submit_self_assessment", p.start)
        worker = w.snapshot.data.get("worker_id")
        answers = w.snapshot.data.get("answers")
        if submitted is None or not isinstance(worker, str) or not isinstance(answers, dict):
            continue
        for question in policy.form.questions_in_stage("self_assessment"):
            if question.kind == "scale_0_10" and question.id not in scales:
                scales.append(question.id)
        by_worker.setdefault(worker, []).append((submitted.at, w.id, answers))
    out: list[DistanceTravelled] = []
    for qid in scales:
        changes: list[int] = []
        for visits in by_worker.values():
            points = [
                a[qid]["score"]
                for _, _, a in sorted(visits, key=lambda v: (v[0], v[1]))
                if isinstance(a.get(qid), dict) and isinstance(a[qid].get("score"), int)
            ]
            if len(points) >= 2:
                changes.append(points[-1] - points[0])
        out.append(
            DistanceTravelled(
                qid,
                len(changes),
                mean(changes),
                sum(1 for c in changes if c > 0),
                sum(1 for c in changes if c == 0),
                sum(1 for c in changes if c < 0),
            )
        )
    if not any(d.practitioners for d in out):
        p.notes.append(
            "Distance travelled is not computable for this period: no practitioner "
            "self-assessed in two audits within it."
        )
        return ()
    return tuple(out)


def moderation(p: Period) -> ModerationSummary:
    finalised = [w for w in p.flows["moderation"] if w.any_in("finalise", p.start) is not None]
    agreed = sum(1 for w in finalised if w.snapshot.data.get("agreed") is True)
    changed = sum(
        1
        for w in finalised
        if w.snapshot.data.get("agreed_grade") != w.snapshot.data.get("original_grade")
    )
    return ModerationSummary(
        finalised=len(finalised),
        agreed=agreed,
        disagreed=len(finalised) - agreed,
        agreement_rate=rate(agreed, len(finalised)),
        grade_changed=changed,
    )
