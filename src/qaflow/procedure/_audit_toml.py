"""Reading an audit-and-moderation procedure file (TOML) into the procedure model.

A thin adapter: ``tomllib`` gives a dict, :func:`read_audit_procedure` walks it with
:class:`~qaflow.procedure.Node` (key paths, unknown keys refused, "did you mean") and builds
an :class:`~qaflow.procedure.AuditPolicy` and its
:class:`~qaflow.procedure.ModerationPolicy`. Every problem in the file is collected and
raised once, as one :class:`~qaflow.errors.PolicyError` listing them all, each with its key
path (``form.sections[2].questions[4].kind``).

Two load-time rules go beyond the shape of the file:

* **roles are declared once**: ``[policy.roles]`` lists every directory role the file
  names, ``name = "description"`` as in an escalation file (the machines' own ``auditor``,
  ``worker`` and ``moderator`` need no declaring); a role named anywhere else but not
  declared is an error, with the nearest declared one;
* **every value is live** (need 9, I17): a value that no machine would read is refused
  rather than kept as a silent constant: a declared role named nowhere, a grade rule or
  sample rule for a grade the form's grading can never give, a stage clause for a stage the
  form does not use, ``follow_up_grades`` with nothing to follow up.

The file's layout is documented by the shipped files (``qaflow/policies/*/audit.toml``) and
the README section "Write your council's policy".
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import Any, Final

import attrs

from qaflow.errors import MISSING, PolicyError
from qaflow.procedure._audit import (
    AUDITOR,
    MODERATOR,
    RESPONDENTS,
    WORKER,
    AuditPolicy,
    FeedbackRule,
    GradeRule,
    ModerationPolicy,
    NoticeRule,
    ReviewRule,
    SampleRule,
    SupervisionReview,
    TaskRule,
    TimeLimit,
)
from qaflow.procedure._defaults import read_defaults
from qaflow.procedure._forms import KINDS, ROLES, STAGES, AuditForm, Question, Section
from qaflow.procedure._grading import GRADE_VALUES, Grade, GradeBands, JudgementScale, ScoreBand
from qaflow.procedure._policy import Policy
from qaflow.procedure._reader import IDENT, Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._versions import migrate

__all__ = ["MACHINE_ROLES", "AuditProcedure", "load_audit_procedure", "read_audit_procedure"]

#: The roles the audit and moderation machines define themselves (never declared).
MACHINE_ROLES: Final = frozenset({AUDITOR, WORKER, MODERATOR})
_JUDGEMENTS: Final = ("exceeds_good", "meets_good", "does_not_meet_good")


class AuditProcedure(tuple[AuditPolicy, ModerationPolicy]):
    """What one audit procedure file holds: the audit policy and its moderation policy."""

    __slots__ = ()

    def __new__(cls, audit: AuditPolicy, moderation: ModerationPolicy) -> AuditProcedure:
        return super().__new__(cls, (audit, moderation))

    @property
    def audit(self) -> AuditPolicy:
        return self[0]

    @property
    def moderation(self) -> ModerationPolicy:
        return self[1]


class _Roles:
    """The declared roles, and every place a role is named, checked when the file is read."""

    def __init__(self, declared: tuple[str, ...], path: str) -> None:
        self.declared = declared
        self.path = path
        self.used: set[str] = set()

    def names(self, node: Node, key: str, *, default: Any = MISSING) -> tuple[str, ...] | None:
        found = node.names(key, default=default)
        if not found:
            return found
        for index, role in enumerate(found):
            self.used.add(role)
            if role not in self.declared and role not in MACHINE_ROLES:
                node.problems.add(
                    f"{node.key_path(key)}[{index}]",
                    f"a role declared in [policy.roles] (declared: {', '.join(self.declared)})",
                    role,
                    hint=did_you_mean(role, (*self.declared, *MACHINE_ROLES)),
                )
        return found

    def one(self, node: Node, key: str) -> str | None:
        role = node.ident(key)
        if not isinstance(role, str):
            return None
        self.used.add(role)
        if role not in self.declared and role not in MACHINE_ROLES:
            node.problem(
                key,
                f"a role declared in [policy.roles] (declared: {', '.join(self.declared)})",
                role,
                hint=did_you_mean(role, (*self.declared, *MACHINE_ROLES)),
            )
        return role

    def check_all_used(self, problems: Problems) -> None:
        for role in self.declared:
            if role not in self.used:
                problems.add(
                    f"{self.path}.{role}",
                    "a role the file names somewhere (a declared role no rule names is "
                    "read by no machine)",
                    role,
                )


def _grades(node: Node, key: str, *, default: Any = MISSING) -> list[tuple[int, Grade]] | None:
    """A list of grade names (``"inadequate"`` ...), each with its index in the file."""
    raw = node.get(key, list, default=default, expected="a list of grades")
    if raw is None or raw is default:
        return None if raw is None else []
    out: list[tuple[int, Grade]] = []
    for index, item in enumerate(raw):
        if isinstance(item, str) and item in GRADE_VALUES:
            out.append((index, GRADE_VALUES[item]))
        else:
            node.problems.add(
                f"{node.key_path(key)}[{index}]",
                "a grade (" + ", ".join(map(repr, GRADE_VALUES)) + ")",
                item,
                hint=did_you_mean(item, GRADE_VALUES),
            )
    return out


def _live_grades(
    node: Node, key: str, found: list[tuple[int, Grade]] | None, gives: Collection[Grade]
) -> None:
    """Refuse a grade the form's grading never gives: a rule for it would never be read."""
    shown = ", ".join(g.name.lower() for g in sorted(gives))
    for index, grade in found or ():
        if grade not in gives:
            node.problems.add(
                f"{node.key_path(key)}[{index}]",
                f"a grade the form's grading can give ({shown}); a rule for another grade "
                "is read by no machine",
                grade.name.lower(),
            )


def _notice(node: Node | None, roles: _Roles) -> NoticeRule | None:
    if node is None:
        return None
    names = roles.names(node, "roles")
    reason, clause = node.text("reason"), node.text("clause", default=None)
    node.finish()
    if names is None or reason is None:
        return None
    return node.build(NoticeRule, roles=names, reason=reason, clause=clause)


def _task(node: Node, roles: _Roles) -> TaskRule | None:
    kind, owner = node.ident("kind"), roles.one(node, "owner_role")
    within = node.duration("within", default=None)
    clause = node.text("clause", default=None)
    node.finish()
    if kind is None or owner is None:
        return None
    text = None if within is None else node.data["within"]
    return node.build(TaskRule, kind=kind, owner_role=owner, within=text, clause=clause)


def _tasks(node: Node, key: str, roles: _Roles) -> tuple[TaskRule, ...]:
    return tuple(t for t in (_task(n, roles) for n in node.tables(key, required=False)) if t)


def _limit(node: Node | None, roles: _Roles) -> TimeLimit | None:
    if node is None:
        return None
    within = node.duration("within")
    notify = roles.names(node, "notify", default=())
    clause = node.text("clause", default=None)
    node.finish()
    if within is None or notify is None:
        return None
    return node.build(TimeLimit, within=node.data["within"], notify=notify, clause=clause)


def _within(node: Node | None, key: str = "within") -> tuple[str | None, str | None]:
    """An elapsed period's text and clause (``{ within = "6 months", clause = ... }``)."""
    if node is None:
        return None, None
    within = node.duration(key)
    clause = node.text("clause", default=None)
    if within is not None and within.is_working_days:
        node.problem(key, "elapsed time (weeks or months), not working days", node.data[key])
        within = None
    return (None if within is None else node.data[key]), clause


def _policy(root: Node) -> tuple[Policy | None, _Roles]:
    """``[policy]``: name and version (what workflows pin), title, source, closure days,
    ``migration_roles`` (who may move a workflow off this version), and ``[policy.roles]``:
    every role, declared once, ``name = "description"``."""
    node = root.table("policy")
    if node is None:
        return None, _Roles((), "policy.roles")
    name, version = node.ident("name"), node.text("version")
    node.text("title", default=None)
    node.text("source", default=None)
    declared: list[str] = []
    table = node.table("roles")
    if table is not None:
        for role, description in table.data.items():
            if not IDENT.match(role):
                table.problem(role, "a lower-case identifier as a role name", role)
            elif not isinstance(description, str) or not description.strip():
                table.problem(role, "the role described in words", description)
            else:
                declared.append(role)
    days: list[date] = []
    for index, raw in enumerate(node.get("closure_days", list, default=[]) or []):
        if isinstance(raw, date) and not hasattr(raw, "hour"):
            days.append(raw)
        else:
            node.problems.add(
                f"{node.key_path('closure_days')}[{index}]", "a date like 2025-12-29", raw
            )
    roles = _Roles(tuple(declared), node.key_path("roles"))
    movers = roles.names(node, "migration_roles", default=())
    node.finish()
    if name is None or version is None or movers is None:
        return None, roles
    return Policy(name, version, frozenset(days), migration_roles=movers), roles


def _question(node: Node, section: str) -> Question | None:
    fields: dict[str, Any] = {
        "id": node.get("id", str),
        "text": node.text("text"),
        "kind": node.choice("kind", KINDS, what="a question kind"),
        "answered_by": node.choice("answered_by", ROLES, what="who answers"),
        "required": node.get("required", bool, default=True),
        "text_fields": node.names("text_fields", default=()),
        "guidance": node.get("guidance", str, default=""),
        "anchors": node.get("anchors", list, default=None, expected="a pair of texts"),
        "clause": node.text("clause", default=None),
    }
    node.finish()
    if any(v is None for k, v in fields.items() if k not in ("anchors", "clause")):
        return None
    return node.build(Question, section=section, **fields)


def _section(node: Node) -> Section | None:
    sid = node.get("id", str)
    title, clause = node.text("title"), node.text("clause", default=None)
    stage = node.choice("stage", STAGES, what="a form stage")
    questions = [_question(q, sid or "") for q in node.tables("questions", min_items=1)]
    node.finish()
    if sid is None or title is None or stage is None or None in questions:
        return None
    return node.build(
        Section, id=sid, title=title, stage=stage, questions=tuple(questions), clause=clause
    )


def _grading(node: Node | None) -> dict[str, Any]:
    """``[form.grading]``: exactly one of ``bands``, ``judgements`` or ``direct = true``."""
    if node is None:
        return {}
    clause = node.text("clause", default=None)
    ways = [k for k in ("bands", "judgements", "direct") if k in node.data]
    if len(ways) != 1:
        node.problem(
            None,
            "exactly one of 'bands' (a 0-10 scale), 'judgements' (three-level) or "
            "'direct = true' (the grade itself)",
            ", ".join(ways) or MISSING,
        )
    out: dict[str, Any] = {}
    if "bands" in node.data:
        bands: list[ScoreBand] = []
        for band in node.tables("bands", min_items=1):
            low, high = band.get("low", int), band.get("high", int)
            grade = band.choice("grade", GRADE_VALUES, what="a grade")
            band.finish()
            if low is not None and high is not None and grade is not None:
                built = band.build(ScoreBand, low=low, high=high, grade=GRADE_VALUES[grade])
                if built is not None:
                    bands.append(built)
        out["grade_bands"] = node.build(GradeBands, bands=bands, clause=clause)
    if "judgements" in node.data:
        table = node.table("judgements")
        if table is not None:
            mapped = {j: table.choice(j, GRADE_VALUES, what="a grade") for j in _JUDGEMENTS}
            table.finish()
            if None not in mapped.values():
                out["judgement_scale"] = table.build(
                    JudgementScale, clause=clause, **{j: GRADE_VALUES[g] for j, g in mapped.items()}
                )
    if "direct" in node.data and node.get("direct", bool) is False:
        node.problem("direct", "true (leave it out for bands or judgements)", False)
    node.finish(also={"bands", "judgements", "direct"})
    return out


def _form(root: Node) -> AuditForm | None:
    node = root.table("form")
    if node is None:
        return None
    name, grading_question = node.text("name"), node.get("grading_question", str)
    clause = node.text("clause", default=None)
    grading = _grading(node.table("grading"))
    sections = [_section(s) for s in node.tables("sections", min_items=1)]
    node.finish()
    if name is None or grading_question is None or None in sections or None in grading.values():
        return None
    return node.build(
        AuditForm,
        name=name,
        sections=tuple(sections),
        grading_question=grading_question,
        clause=clause,
        **grading,
    )


def _grade_rule(node: Node, roles: _Roles, gives: Collection[Grade]) -> GradeRule | None:
    grades = _grades(node, "grades")
    _live_grades(node, "grades", grades, gives)
    fields: dict[str, Any] = {
        "clause": node.text("clause"),
        "notify": roles.names(node, "notify", default=()),
        "reason": node.get("reason", str, default=""),
        "tasks": _tasks(node, "tasks", roles),
        "required_actions": node.names("required_actions", default=()),
        "immediate_actions": node.get("immediate_actions", bool, default=False),
        "notify_with": node.choice("notify_with", ("grading", "actions"), default="grading"),
    }
    node.finish()
    if grades is None or None in fields.values():
        return None
    return node.build(GradeRule, grades={g for _, g in grades}, **fields)


def _review(node: Node | None, roles: _Roles, gives: Collection[Grade]) -> ReviewRule | None:
    """``[audit.sufficiency_review]``: who reviews the agreed actions, for which grades."""
    if node is None:
        return None
    grades = _grades(node, "grades")
    _live_grades(node, "grades", grades, gives)
    reviewer = roles.one(node, "reviewer_role")
    task_node = node.table("task")
    task = None if task_node is None else _task(task_node, roles)
    notify = roles.names(node, "notify_if_not", default=())
    clause = node.text("clause")
    node.finish()
    if grades is None or reviewer is None or task is None or notify is None or clause is None:
        return None
    return node.build(
        ReviewRule,
        grades={g for _, g in grades},
        reviewer_role=reviewer,
        task=task,
        notify_if_not=notify,
        clause=clause,
    )


def _supervision(node: Node | None, roles: _Roles) -> SupervisionReview | None:
    """``[audit.supervision_review]``: who records the review in supervision (BX-AUD-10)."""
    if node is None:
        return None
    who = roles.names(node, "roles")
    clause = node.text("clause")
    tasks = _tasks(node, "performance_tasks", roles)
    node.finish()
    if who is None or clause is None:
        return None
    return node.build(SupervisionReview, roles=who, clause=clause, performance_tasks=tasks)


def _audit(root: Node, policy: Policy | None, form: AuditForm | None, roles: _Roles) -> Any:
    alloc = root.table("allocation")
    node = root.table("audit")
    if alloc is None or node is None:
        return None
    gives = form.grades if form is not None else frozenset(Grade)
    fields: dict[str, Any] = {
        "allocator_roles": roles.names(alloc, "allocator_roles"),
        "auditor_from_other_team": alloc.get("auditor_from_other_team", bool),
        "other_team_clause": alloc.text("other_team_clause", default=None),
        "pair_window_months": alloc.get("pair_window_months", int),
        "monthly_clause": alloc.text("monthly_clause", default=None),
        "allocation_notice": _notice(alloc.table("notice", required=False), roles),
    }
    alloc.finish()
    stage_clauses = node.table("stage_clauses")
    clauses: dict[str, str] = {}
    if stage_clauses is not None:
        used = form.stages if form is not None else STAGES
        for stage in stage_clauses.data:
            if stage not in used:
                stage_clauses.problem(
                    stage,
                    f"a stage the form uses ({', '.join(used)}); a clause for another stage "
                    "is read by no machine",
                    stage,
                    hint=did_you_mean(stage, used),
                )
            elif (text := stage_clauses.text(stage)) is not None:
                clauses[stage] = text
    feedback = node.table("feedback", required=False)
    if feedback is not None:
        questions = feedback.get("questions", list, expected="a list of question ids")
        clause = feedback.text("clause")
        required_from, consent_for = (
            feedback.names(key, allowed=RESPONDENTS, default=default, what="a respondent")
            for key, default in (("required_from", ("family",)), ("consent_for", ()))
        )
        feedback.finish()
        if questions is not None and clause is not None and form is not None:
            for index, qid in enumerate(questions):
                if not any(q.id == qid for q in form.questions):
                    feedback.problems.add(
                        f"{feedback.key_path('questions')}[{index}]",
                        "the id of a question on the form",
                        qid,
                        hint=did_you_mean(qid, [q.id for q in form.questions]),
                    )
            fields["feedback"] = feedback.build(
                FeedbackRule,
                questions=questions,
                clause=clause,
                required_from=required_from,
                consent_for=consent_for,
            )
    fields["sufficiency_review"] = _review(
        node.table("sufficiency_review", required=False), roles, gives
    )
    supervision = node.table("supervision_review", required=False)
    fields["supervision_review"] = _supervision(supervision, roles)
    week = node.table("practice_week", required=False)
    if week is not None:
        fields["practice_week_action"] = week.ident("action")
        fields["practice_week_clause"] = week.text("clause")
        week.finish()
    lookback = node.table("lookback", required=False)
    if lookback is not None:
        fields["lookback"], fields["lookback_clause"] = _within(lookback)
        fields["lookback_may_extend"] = lookback.get("may_extend", bool)
        lookback.finish()
    window_node = node.table("moderation_window")
    window, window_clause = _within(window_node)
    if window_node is not None:
        window_node.finish()
    grade_rules = [_grade_rule(r, roles, gives) for r in node.tables("grade_rules", required=False)]
    task = node.table("self_assessment_task", required=False)
    selection_task = node.table("selection_task", required=False)
    fields.update(
        cancel_roles=roles.names(node, "cancel_roles"),
        qa_roles=roles.names(node, "qa_roles"),
        actions_clause=node.text("actions_clause"),
        self_assessment_notice=_notice(node.table("self_assessment_notice", required=False), roles),
        self_assessment_task=None if task is None else _task(task, roles),
        selection_notice=_notice(node.table("selection_notice", required=False), roles),
        selection_task=None if selection_task is None else _task(selection_task, roles),
        completion_tasks=_tasks(node, "completion_tasks", roles),
        completion_limit=_limit(node.table("completion_limit", required=False), roles),
        follow_up=_limit(node.table("follow_up", required=False), roles),
        safeguarding=_notice(node.table("safeguarding", required=False), roles),
        moderation_window=window,
        moderation_clause=window_clause,
    )
    node.finish()
    required = (
        "allocator_roles",
        "auditor_from_other_team",
        "pair_window_months",
        "cancel_roles",
        "qa_roles",
        "actions_clause",
    )
    if policy is None or form is None or None in grade_rules or window is None:
        return None
    if any(fields[k] is None for k in required) or len(node.problems):
        return None  # every problem is already recorded; nothing half-read is built
    return node.build(
        AuditPolicy,
        policy=policy,
        form=form,
        stage_clauses=clauses,
        grade_rules=grade_rules,
        **fields,
    )


def _moderation(root: Node, audit: AuditPolicy | None, roles: _Roles, gives: Any) -> Any:
    node = root.table("moderation")
    if node is None:
        return None
    sample_node = node.table("sample")
    sample = None
    if sample_node is not None:
        lookback, clause = _within(sample_node, "lookback")
        always = _grades(sample_node, "always", default=[])
        _live_grades(sample_node, "always", always, gives)
        share = sample_node.get("share", (int, float), expected="a number from 0 to 1")
        minimum = sample_node.get("minimum", int, default=0)
        sample_node.finish()
        if lookback is not None and always is not None and share is not None:
            sample = sample_node.build(
                SampleRule,
                lookback=lookback,
                always={g for _, g in always},
                share=share,
                minimum=minimum,
                clause=clause,
            )
    follow = node.table("follow_up_notice", required=False)
    tasks = _tasks(node, "follow_up_tasks", roles)
    fields: dict[str, Any] = {
        "allocator_roles": roles.names(node, "allocator_roles"),
        "moderator_roles": roles.names(node, "moderator_roles", default=()),
        "completion_notice": _notice(node.table("completion_notice", required=False), roles),
        "completion_tasks": _tasks(node, "completion_tasks", roles),
        "follow_up_notice": _notice(follow, roles),
        "inadequate_notice": _notice(node.table("inadequate_notice", required=False), roles),
        "follow_up_tasks": tasks,
    }
    for key in ("allocation_clause", "scaling_clause", "actions_clause"):
        fields[key] = node.text(key, default=None)
    for key in ("agreement_clause", "disagreement_clause"):
        fields[key] = node.text(key, default=None)
    if node.has("follow_up_grades"):
        grades = _grades(node, "follow_up_grades")
        _live_grades(node, "follow_up_grades", grades, gives)
        if follow is None and not tasks:
            node.problem(
                "follow_up_grades",
                "a follow_up_notice or follow_up_tasks to act on them (without either, the "
                "grades are read by no machine)",
                "a list of grades",
            )
        fields["follow_up_grades"] = None if grades is None else {g for _, g in grades}
    node.finish()
    if audit is None or sample is None or len(node.problems):
        return None  # every problem is already recorded; nothing half-read is built
    return node.build(ModerationPolicy, audit=audit, sample=sample, **fields)


def read_audit_procedure(doc: dict[str, Any], *, source: str) -> AuditProcedure:
    """Build the audit and moderation policies from a parsed procedure file.

    Raises one :class:`PolicyError` listing every problem found, each with its key path.
    """
    data = migrate(doc, source=source)
    problems = Problems(source)
    root = Node(data, problems)
    policy, roles = _policy(root)
    form = _form(root)
    audit = _audit(root, policy, form, roles)
    gives = form.grades if form is not None else frozenset(Grade)
    moderation = _moderation(root, audit, roles, gives)
    defaults = read_defaults(root)
    root.finish()
    roles.check_all_used(problems)
    problems.raise_if_any()
    if audit is None or moderation is None:  # pragma: no cover - a problem was recorded
        raise PolicyError(source=source, expected="a complete audit procedure")
    audit = attrs.evolve(audit, defaults=defaults)
    return AuditProcedure(audit, attrs.evolve(moderation, audit=audit))


def load_audit_procedure(path: str | Path, *, text: str | None = None) -> AuditProcedure:
    """Read the audit procedure file at ``path`` (or ``text``, named ``path`` in errors)."""
    source = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise PolicyError(
                source=source, expected=f"a readable file ({error.strerror})"
            ) from None
    return read_audit_procedure(parse_toml(text, source=source), source=source)
