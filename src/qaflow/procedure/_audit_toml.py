"""Reading an audit-and-moderation procedure file (TOML) into the procedure model.

A thin adapter: ``tomllib`` gives a dict, :func:`read_audit_procedure` walks it against the
format's definitions of an audit file (:data:`~qaflow.procedure._format.AUDIT_FILE`, the
same definitions ``qaflow policy schema audit`` writes the JSON Schema from: key paths,
unknown keys refused, kinds checked, "did you mean") and builds an
:class:`~qaflow.procedure.AuditPolicy` and its :class:`~qaflow.procedure.ModerationPolicy`.
Every problem in the file is collected and raised once, as one
:class:`~qaflow.errors.PolicyError` listing them all, each with its key path
(``form.sections[2].questions[4].kind``).

Two load-time rules go beyond the shape of the file:

* **roles are declared once**: ``[policy.roles]`` lists every directory role the file
  names, ``name = "description"`` as in an escalation file, or cites the council's roles
  file (``roles = "roles.toml"``); the machines' own ``auditor``, ``worker`` and
  ``moderator`` need no declaring; a role named anywhere else but not declared is an error,
  with the nearest declared one;
* **every value is live** (need 9, I17): a value that no machine would read is refused
  rather than kept as a silent constant: a declared role named nowhere, a grade rule or
  sample rule for a grade the form's grading can never give, a stage clause for a stage the
  form does not use, ``follow_up_grades`` with nothing to follow up.

The file's layout is documented by the shipped files (``qaflow/policies/*/audit.toml``) and
the README section "Write your council's policy".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from qaflow.errors import PolicyError
from qaflow.procedure._audit import (
    AUDITOR,
    MODERATOR,
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
from qaflow.procedure._format import AUDIT_FILE
from qaflow.procedure._forms import AuditForm, Question, Section
from qaflow.procedure._grading import GRADE_VALUES, Grade, GradeBands, JudgementScale, ScoreBand
from qaflow.procedure._policy import Policy
from qaflow.procedure._reader import Node, Problems, did_you_mean, parse_toml
from qaflow.procedure._versions import migrate
from qaflow.procedure._walk import Base, Walker, declared_roles

__all__ = ["MACHINE_ROLES", "AuditProcedure", "load_audit_procedure", "read_audit_procedure"]

#: The roles the audit and moderation machines define themselves (never declared).
MACHINE_ROLES: Final = frozenset({AUDITOR, WORKER, MODERATOR})

Values = Mapping[str, Any]


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


class _PartBuilder:
    """Builds the form, grading and rule parts from walked values, recording each refusal."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def build(self, path: str, factory: Any, /, **fields: Any) -> Any:
        node = Node({}, self.problems, path)
        return node.build(factory, **fields)

    def grades(
        self, path: str, names: Collection[str] | None, gives: Collection[Grade]
    ) -> frozenset[Grade]:
        """The grades named, refusing one the form's grading never gives: a rule for it
        would be read by no machine."""
        shown = ", ".join(g.name.lower() for g in sorted(gives))
        out: set[Grade] = set()
        for index, name in enumerate(names or ()):
            grade = GRADE_VALUES[name]
            if grade not in gives:
                self.problems.add(
                    f"{path}[{index}]",
                    f"a grade the form's grading can give ({shown}); a rule for another grade "
                    "is read by no machine",
                    name,
                )
            out.add(grade)
        return frozenset(out)

    def notice(self, path: str, v: Values | None) -> NoticeRule | None:
        if not v or v.get("roles") is None or v.get("reason") is None:
            return None
        return self.build(  # type: ignore[no-any-return]
            path, NoticeRule, roles=v["roles"], reason=v["reason"], clause=v.get("clause")
        )

    def task(self, path: str, v: Values | None) -> TaskRule | None:
        if not v or v.get("kind") is None or v.get("owner_role") is None:
            return None
        return self.build(path, TaskRule, **v)  # type: ignore[no-any-return]

    def tasks(self, path: str, items: list[Values] | None) -> tuple[TaskRule | None, ...]:
        return tuple(self.task(f"{path}[{i}]", v) for i, v in enumerate(items or ()))

    def limit(self, path: str, v: Values | None) -> TimeLimit | None:
        if not v or v.get("within") is None:
            return None
        return self.build(path, TimeLimit, **v)  # type: ignore[no-any-return]

    def form(self, v: Values | None) -> AuditForm | None:
        if not v or None in (v.get("name"), v.get("grading_question"), v.get("grading")):
            return None
        sections = [self.section(f"form.sections[{i}]", s) for i, s in enumerate(v["sections"])]
        grading = self.grading("form.grading", v["grading"])
        if not sections or None in sections or grading is None:
            return None
        return self.build(  # type: ignore[no-any-return]
            "form",
            AuditForm,
            name=v["name"],
            sections=tuple(sections),
            grading_question=v["grading_question"],
            clause=v.get("clause"),
            **grading,
        )

    def section(self, path: str, v: Values) -> Section | None:
        if None in (v.get("id"), v.get("title"), v.get("stage"), v.get("questions")):
            return None
        questions = [
            self.question(f"{path}.questions[{i}]", v["id"], q)
            for i, q in enumerate(v["questions"])
        ]
        if not questions or None in questions:
            return None
        return self.build(  # type: ignore[no-any-return]
            path,
            Section,
            id=v["id"],
            title=v["title"],
            stage=v["stage"],
            questions=tuple(questions),
            clause=v.get("clause"),
        )

    def question(self, path: str, section: str, v: Values) -> Question | None:
        if None in (v.get(k, "") for k in ("id", "text", "kind", "answered_by", "text_fields")):
            return None
        if None in (v.get(k, "") for k in ("required", "guidance", "anchors", "clause")):
            return None
        return self.build(path, Question, section=section, **v)  # type: ignore[no-any-return]

    def grading(self, path: str, v: Values) -> dict[str, Any] | None:
        """``[form.grading]``: ``bands``, ``judgements`` or ``direct = true`` (exactly one,
        checked by the walker)."""
        clause = v.get("clause")
        if v.get("bands"):
            bands = [
                self.build(
                    f"{path}.bands[{i}]",
                    ScoreBand,
                    low=b["low"],
                    high=b["high"],
                    grade=GRADE_VALUES[b["grade"]],
                )
                for i, b in enumerate(v["bands"])
                if None not in (b.get("low"), b.get("high"), b.get("grade"))
            ]
            if len(bands) != len(v["bands"]) or None in bands:
                return None
            built = self.build(path, GradeBands, bands=bands, clause=clause)
            return None if built is None else {"grade_bands": built}
        judgements = v.get("judgements")
        if judgements:
            if None in judgements.values() or len(judgements) != 3:
                return None
            mapped = {j: GRADE_VALUES[g] for j, g in judgements.items()}
            built = self.build(f"{path}.judgements", JudgementScale, clause=clause, **mapped)
            return None if built is None else {"judgement_scale": built}
        return {} if v.get("direct") else None


class _Builder(_PartBuilder):
    """Builds the audit and moderation policies from the walked values."""

    def policy(self, v: Values | None) -> Policy | None:
        if not v or None in (v.get("name"), v.get("version"), v.get("migration_roles", ())):
            return None
        return Policy(
            v["name"],
            v["version"],
            frozenset(v.get("closure_days") or ()),
            migration_roles=v.get("migration_roles") or (),
        )

    def audit(
        self, policy: Policy | None, form: AuditForm | None, alloc: Values, v: Values
    ) -> AuditPolicy | None:
        gives = form.grades if form is not None else frozenset(Grade)
        stages = form.stages if form is not None else ()
        clauses = dict(v.get("stage_clauses") or {})
        for stage in list(clauses):
            if form is not None and stage not in stages:
                self.problems.add(
                    f"audit.stage_clauses.{stage}",
                    f"a stage the form uses ({', '.join(stages)}); a clause for another stage "
                    "is read by no machine",
                    stage,
                    hint=did_you_mean(stage, stages),
                )
        feedback = v.get("feedback")
        if feedback and form is not None:
            ids = [q.id for q in form.questions]
            for index, qid in enumerate(feedback.get("questions") or ()):
                if qid not in ids:
                    self.problems.add(
                        f"audit.feedback.questions[{index}]",
                        "the id of a question on the form",
                        qid,
                        hint=did_you_mean(qid, ids),
                    )
        rules = [
            self.grade_rule(f"audit.grade_rules[{i}]", r, gives)
            for i, r in enumerate(v.get("grade_rules") or ())
        ]
        week, lookback = v.get("practice_week") or {}, v.get("lookback") or {}
        window = v.get("moderation_window") or {}
        fields: dict[str, Any] = {
            "allocator_roles": alloc.get("allocator_roles"),
            "auditor_from_other_team": alloc.get("auditor_from_other_team"),
            "other_team_clause": alloc.get("other_team_clause"),
            "pair_window_months": alloc.get("pair_window_months"),
            "monthly_clause": alloc.get("monthly_clause"),
            "allocation_notice": self.notice("allocation.notice", alloc.get("notice")),
            "cancel_roles": v.get("cancel_roles"),
            "qa_roles": v.get("qa_roles"),
            "actions_clause": v.get("actions_clause"),
            "self_assessment_notice": self.notice(
                "audit.self_assessment_notice", v.get("self_assessment_notice")
            ),
            "self_assessment_task": self.task(
                "audit.self_assessment_task", v.get("self_assessment_task")
            ),
            "completion_tasks": self.tasks("audit.completion_tasks", v.get("completion_tasks")),
            "completion_limit": self.limit("audit.completion_limit", v.get("completion_limit")),
            "follow_up": self.limit("audit.follow_up", v.get("follow_up")),
            "safeguarding": self.notice("audit.safeguarding", v.get("safeguarding")),
            "selection_notice": self.notice("audit.selection_notice", v.get("selection_notice")),
            "selection_task": self.task("audit.selection_task", v.get("selection_task")),
            "moderation_window": window.get("within"),
            "moderation_clause": window.get("clause"),
        }
        if feedback:
            fields["feedback"] = self.build(
                "audit.feedback",
                FeedbackRule,
                questions=feedback["questions"],
                clause=feedback["clause"],
                required_from=feedback.get("required_from", ("family",)),
                consent_for=feedback.get("consent_for", ()),
            )
        fields["sufficiency_review"] = self.review(v.get("sufficiency_review"), gives)
        supervision = v.get("supervision_review")
        if supervision and None not in (supervision.get("roles"), supervision.get("clause")):
            fields["supervision_review"] = self.build(
                "audit.supervision_review",
                SupervisionReview,
                roles=supervision["roles"],
                clause=supervision["clause"],
                performance_tasks=self.tasks(
                    "audit.supervision_review.performance_tasks",
                    supervision.get("performance_tasks"),
                ),
            )
        if week:
            fields["practice_week_action"] = week.get("action")
            fields["practice_week_clause"] = week.get("clause")
        if lookback:
            fields["lookback"] = lookback.get("within")
            fields["lookback_clause"] = lookback.get("clause")
            fields["lookback_may_extend"] = lookback.get("may_extend")
        if policy is None or form is None or None in rules or len(self.problems):
            return None  # every problem is already recorded; nothing half-read is built
        required = ("allocator_roles", "auditor_from_other_team", "pair_window_months")
        if any(fields[k] is None for k in (*required, "cancel_roles", "qa_roles")):
            return None
        return self.build(  # type: ignore[no-any-return]
            "audit",
            AuditPolicy,
            policy=policy,
            form=form,
            stage_clauses=clauses,
            grade_rules=rules,
            **{k: x for k, x in fields.items() if x is not None},
        )

    def review(self, v: Values | None, gives: Collection[Grade]) -> ReviewRule | None:
        """``[audit.sufficiency_review]``: who reviews the agreed actions, for which grades."""
        path = "audit.sufficiency_review"
        if not v:
            return None
        grades = self.grades(f"{path}.grades", v.get("grades"), gives)
        task = self.task(f"{path}.task", v.get("task"))
        if None in (v.get("grades"), v.get("reviewer_role"), task, v.get("clause")):
            return None
        return self.build(  # type: ignore[no-any-return]
            path,
            ReviewRule,
            grades=grades,
            reviewer_role=v["reviewer_role"],
            task=task,
            notify_if_not=v.get("notify_if_not", ()),
            clause=v["clause"],
        )

    def grade_rule(self, path: str, v: Values, gives: Collection[Grade]) -> GradeRule | None:
        grades = self.grades(f"{path}.grades", v.get("grades"), gives)
        tasks = self.tasks(f"{path}.tasks", v.get("tasks"))
        if v.get("grades") is None or v.get("clause") is None or None in tasks:
            return None
        fields = {k: x for k, x in v.items() if k not in ("grades", "tasks")}
        return self.build(  # type: ignore[no-any-return]
            path, GradeRule, grades=grades, tasks=tasks, **fields
        )

    def moderation(
        self, audit: AuditPolicy | None, v: Values, gives: Collection[Grade]
    ) -> ModerationPolicy | None:
        sample_v = v.get("sample") or {}
        always = self.grades("moderation.sample.always", sample_v.get("always"), gives)
        follow = v.get("follow_up_notice")
        tasks = self.tasks("moderation.follow_up_tasks", v.get("follow_up_tasks"))
        fields: dict[str, Any] = {
            k: v.get(k)
            for k in (
                "allocator_roles",
                "allocation_clause",
                "scaling_clause",
                "actions_clause",
                "agreement_clause",
                "disagreement_clause",
            )
        }
        fields.update(
            moderator_roles=v.get("moderator_roles", ()),
            completion_notice=self.notice(
                "moderation.completion_notice", v.get("completion_notice")
            ),
            completion_tasks=self.tasks("moderation.completion_tasks", v.get("completion_tasks")),
            follow_up_notice=self.notice("moderation.follow_up_notice", follow),
            inadequate_notice=self.notice(
                "moderation.inadequate_notice", v.get("inadequate_notice")
            ),
            follow_up_tasks=tasks,
        )
        if "follow_up_grades" in v:
            fields["follow_up_grades"] = self.grades(
                "moderation.follow_up_grades", v["follow_up_grades"], gives
            )
            if follow is None and not tasks:
                self.problems.add(
                    "moderation.follow_up_grades",
                    "a follow_up_notice or follow_up_tasks to act on them (without either, the "
                    "grades are read by no machine)",
                    "a list of grades",
                )
        sample = None
        if None not in (sample_v.get("lookback"), sample_v.get("share")):
            sample = self.build(
                "moderation.sample",
                SampleRule,
                lookback=sample_v["lookback"],
                always=always,
                share=sample_v["share"],
                minimum=sample_v.get("minimum", 0),
                clause=sample_v.get("clause"),
            )
        if audit is None or sample is None or len(self.problems):
            return None  # every problem is already recorded; nothing half-read is built
        if fields["allocator_roles"] is None or fields["moderator_roles"] is None:
            return None
        return self.build(  # type: ignore[no-any-return]
            "moderation",
            ModerationPolicy,
            audit=audit,
            sample=sample,
            **{k: x for k, x in fields.items() if x is not None or k.endswith("_notice")},
        )


def read_audit_procedure(
    doc: dict[str, Any], *, source: str, base: Base | None = None
) -> AuditProcedure:
    """Build the audit and moderation policies from a parsed procedure file.

    ``base`` is the file's folder, where a roles file it cites is read from. Raises one
    :class:`PolicyError` listing every problem found, each with its key path.
    """
    data = migrate(doc, source=source)
    problems = Problems(source)
    roles = declared_roles(data, source=source, base=base)
    walker = Walker(problems, roles, machine_roles=MACHINE_ROLES, durations_as_text=True)
    root = Node(data, problems)
    defaults = read_defaults(root)  # [[defaults]]: read against the whole file's values
    values = walker.table(root, AUDIT_FILE.without("format_version", "defaults"))
    builder = _Builder(problems)
    policy = builder.policy(values.get("policy"))
    form = builder.form(values.get("form"))
    gives = form.grades if form is not None else frozenset(Grade)
    audit = None
    if values.get("allocation") is not None and values.get("audit") is not None:
        audit = builder.audit(policy, form, values["allocation"], values["audit"])
    moderation = None
    if values.get("moderation") is not None:
        moderation = builder.moderation(audit, values["moderation"], gives)
    walker.check_all_used()
    problems.raise_if_any()
    if audit is None or moderation is None:  # pragma: no cover - a problem was recorded
        raise PolicyError(source=source, expected="a complete audit procedure")
    audit = attrs.evolve(audit, defaults=defaults)
    return AuditProcedure(audit, attrs.evolve(moderation, audit=audit))


def load_audit_procedure(
    path: str | Path, *, text: str | None = None, base: Base | None = None
) -> AuditProcedure:
    """Read the audit procedure file at ``path`` (or ``text``, named ``path`` in errors);
    a roles file it cites is read from ``base`` (default: the file's folder)."""
    source = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise PolicyError(
                source=source, expected=f"a readable file ({error.strerror})"
            ) from None
        base = Path(path).parent if base is None else base
    return read_audit_procedure(parse_toml(text, source=source), source=source, base=base)
