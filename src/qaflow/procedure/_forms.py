"""Audit forms as frozen, validated procedure data.

A council's audit tool is data, not code: an :class:`AuditForm` lists its sections and
questions (what kind of answer each takes, who gives it, which free-text fields go with it,
whether it must be answered), and says how the overall grading question becomes an Ofsted
:class:`~qaflow.procedure.Grade`: through grade bands for a 0-10 scale (BX-AUD-06), a
judgement scale for a three-level judgement (BK-AUD-01), or directly for a ``grade`` question
(a four-level Ofsted-grade tool). Nothing here knows about a particular council.

Every definition is checked when it is built: bad definitions raise
:class:`~qaflow.errors.PolicyError` naming the offending parts. Answers given at run time
are checked by :meth:`Question.validate_answer` and :func:`validate_answers`, which raise
:class:`~qaflow.errors.ValidationError` naming the field (``"Q7.score"``) and what would have
been accepted. Error messages never quote free text, which may hold personal data.

An answer is a mapping. Its main value sits under the key for the question's kind
(:data:`ANSWER_KEYS`): ``{"score": 7, "strengths": "...", ...}`` for a 0-10 scale,
``{"judgement": "meets_good", "evidence": "...", "impact": "..."}`` for a judgement,
``{"grade": "good"}`` for an Ofsted grade, ``{"answer": True}`` for yes/no and
``{"text": "..."}`` for free text. The question's ``text_fields`` name the free-text fields
that must come with it.

Forms are answered in stages, always in the order of :data:`STAGES`; the audit machine maps
its states onto them (health check before the meeting, every required answer before
grading), so a form may only use these stage names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

import attrs

from qaflow._convert import name_tuple as _str_tuple
from qaflow.errors import PolicyError, ValidationError
from qaflow.procedure._grading import (
    _SCALE_MAX,
    _SCALE_MIN,
    Grade,
    GradeBands,
    JudgementScale,
    _check_ident,
    _check_text,
    _is_int,
    _judgement,
    direct_grade,
)

__all__ = [
    "ANSWER_KEYS",
    "KINDS",
    "ROLES",
    "STAGES",
    "AuditForm",
    "Question",
    "QuestionKind",
    "Role",
    "Section",
    "Stage",
    "missing_answers",
    "validate_answers",
]

QuestionKind = Literal["scale_0_10", "judgement", "grade", "text", "yes_no"]
Role = Literal[
    "practitioner", "auditor", "collaborative", "family", "child", "network", "moderator"
]
Stage = Literal["self_assessment", "health_check", "meeting", "grading", "feedback"]

#: Who may answer a question. ``collaborative`` means auditor and practitioner agree it
#: together in the audit meeting (BX-AUD-05); the auditor records it.
ROLES: Final[tuple[Role, ...]] = get_args(Role)
#: The stages in which a form is answered, in the order the audit machine reaches them.
STAGES: Final[tuple[Stage, ...]] = get_args(Stage)
#: The kinds of question a form may ask.
KINDS: Final[tuple[QuestionKind, ...]] = get_args(QuestionKind)
#: The key under which each kind of question keeps its main value in an answer mapping.
ANSWER_KEYS: Final[Mapping[QuestionKind, str]] = MappingProxyType(
    {
        "scale_0_10": "score",
        "judgement": "judgement",
        "grade": "grade",
        "text": "text",
        "yes_no": "answer",
    }
)
_KINDS: Final = KINDS


def _anchors(value: Iterable[str] | None) -> tuple[str, str] | None:
    if value is None:
        return None
    items = tuple(value)
    if len(items) != 2:
        raise PolicyError(f"scale anchors must be a pair (0 means, 10 means), got {items!r}")
    return (items[0], items[1])


@attrs.frozen(kw_only=True)
class Question:
    """One question of an audit form.

    ``kind`` says what the answer is (:data:`ANSWER_KEYS`), ``answered_by`` who gives it,
    ``text_fields`` which named free-text fields must come with it, and ``required``
    whether the question must be answered before its section's stage is complete.
    ``guidance`` is the prompt or suggested scaling question shown with it and ``anchors``
    what 0 and 10 mean on a scale. ``clause`` cites the rule the question enforces.
    """

    id: str
    section: str
    text: str
    kind: QuestionKind
    answered_by: Role
    required: bool = True
    text_fields: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    guidance: str = ""
    anchors: tuple[str, str] | None = attrs.field(default=None, converter=_anchors)
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        clause = self.clause
        _check_ident("a question id", self.id, clause)
        _check_ident(f"question {self.id!r}: its section", self.section, clause)
        _check_text(f"question {self.id!r}: its text", self.text, clause)
        if self.kind not in _KINDS:
            raise PolicyError(
                f"question {self.id!r}: kind must be one of {', '.join(_KINDS)}, got {self.kind!r}",
                clause=clause,
            )
        if self.answered_by not in ROLES:
            raise PolicyError(
                f"question {self.id!r}: answered_by must be one of {', '.join(ROLES)}, "
                f"got {self.answered_by!r}",
                clause=clause,
            )
        if not isinstance(self.required, bool):
            raise PolicyError(
                f"question {self.id!r}: required must be a bool, got {self.required!r}",
                clause=clause,
            )
        if not isinstance(self.guidance, str):
            raise PolicyError(f"question {self.id!r}: guidance must be a string", clause=clause)
        seen: set[str] = set()
        for name in self.text_fields:
            _check_ident(f"question {self.id!r}: text field", name, clause)
            if name in ANSWER_KEYS.values():
                raise PolicyError(
                    f"question {self.id!r}: text field {name!r} clashes with an answer key",
                    clause=clause,
                )
            if name in seen:
                raise PolicyError(
                    f"question {self.id!r}: text field {name!r} is listed twice", clause=clause
                )
            seen.add(name)
        if self.anchors is not None:
            if self.kind != "scale_0_10":
                raise PolicyError(
                    f"question {self.id!r}: only a scale_0_10 question has anchors",
                    clause=clause,
                )
            for anchor in self.anchors:
                _check_text(f"question {self.id!r}: an anchor", anchor, clause)

    @property
    def answer_key(self) -> str:
        """The key of this question's main value in an answer mapping, e.g. ``"score"``."""
        return ANSWER_KEYS[self.kind]

    def validate_answer(self, answer: Mapping[str, object]) -> None:
        """Raise ValidationError unless ``answer`` is a complete, well-typed answer.

        The main value must suit the kind (an ``int`` 0..10 -- not a ``bool`` or a
        ``float`` -- a judgement value, a ``bool`` or a non-empty string); every field in
        ``text_fields`` must be a non-empty string; no other key is accepted, so a
        misspelt field is caught rather than silently dropped.
        """
        if not isinstance(answer, Mapping):
            raise ValidationError(
                field=self.id, value=answer, expected="a mapping of field names to values"
            )
        key = self.answer_key
        field = f"{self.id}.{key}"
        value = answer.get(key)
        if self.kind == "scale_0_10":
            if not (_is_int(value) and _SCALE_MIN <= value <= _SCALE_MAX):
                raise ValidationError(
                    field=field, value=value, expected=f"an integer in {_SCALE_MIN}..{_SCALE_MAX}"
                )
        elif self.kind == "judgement":
            _judgement(value, field)
        elif self.kind == "grade":
            direct_grade(value, field=field)
        elif self.kind == "yes_no":
            if not isinstance(value, bool):
                raise ValidationError(field=field, value=value, expected="True or False")
        else:
            _check_answer_text(field, value)
        for name in self.text_fields:
            _check_answer_text(f"{self.id}.{name}", answer.get(name))
        allowed = {key, *self.text_fields}
        for name in answer:
            if name not in allowed:
                raise ValidationError(
                    field=f"{self.id}.{name}",
                    value=name,
                    expected="one of the fields " + ", ".join(sorted(allowed)),
                )


def _check_answer_text(field: str, value: object) -> None:
    # Only a non-str value is shown, never the text itself: it may hold personal data.
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            field=field,
            value=value if not isinstance(value, str) else "",
            expected="a non-empty string",
        )


def _questions(items: Iterable[Question]) -> tuple[Question, ...]:
    return tuple(items)


@attrs.frozen(kw_only=True)
class Section:
    """A titled group of questions answered in one :data:`STAGES` stage."""

    id: str
    title: str
    stage: Stage
    questions: tuple[Question, ...] = attrs.field(converter=_questions)
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        clause = self.clause
        _check_ident("a section id", self.id, clause)
        _check_text(f"section {self.id!r}: its title", self.title, clause)
        if self.stage not in STAGES:
            raise PolicyError(
                f"section {self.id!r}: stage must be one of {', '.join(STAGES)}, "
                f"got {self.stage!r}",
                clause=clause,
            )
        if not self.questions:
            raise PolicyError(f"section {self.id!r} has no questions", clause=clause)
        for question in self.questions:
            if not isinstance(question, Question):
                raise PolicyError(
                    f"section {self.id!r} holds {question!r}, not a Question", clause=clause
                )
            if question.section != self.id:
                raise PolicyError(
                    f"question {question.id!r} says it belongs to section "
                    f"{question.section!r} but is listed in section {self.id!r}",
                    clause=clause,
                )


def _sections(items: Iterable[Section]) -> tuple[Section, ...]:
    return tuple(items)


@attrs.frozen(kw_only=True)
class AuditForm:
    """A council's audit tool: its sections, and how its grading question becomes a Grade.

    ``grading_question`` names the required question whose answer is the overall grade.
    A ``scale_0_10`` grading question needs ``grade_bands`` on the 0..10 scale; a
    ``judgement`` one needs ``judgement_scale``; the other one must be left out.
    """

    name: str
    sections: tuple[Section, ...] = attrs.field(converter=_sections)
    grading_question: str
    grade_bands: GradeBands | None = None
    judgement_scale: JudgementScale | None = None
    clause: str | None = None
    _index: Mapping[str, Question] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        clause = self.clause
        _check_text("a form's name", self.name, clause)
        if not self.sections:
            raise PolicyError(f"form {self.name!r} has no sections", clause=clause)
        section_ids: set[str] = set()
        index: dict[str, Question] = {}
        for section in self.sections:
            if not isinstance(section, Section):
                raise PolicyError(
                    f"form {self.name!r} holds {section!r}, not a Section", clause=clause
                )
            if section.id in section_ids:
                raise PolicyError(
                    f"form {self.name!r}: section id {section.id!r} is used twice",
                    clause=clause,
                )
            section_ids.add(section.id)
            for question in section.questions:
                if question.id in index:
                    raise PolicyError(
                        f"form {self.name!r}: question id {question.id!r} is used in "
                        f"sections {index[question.id].section!r} and {section.id!r}",
                        clause=clause,
                    )
                index[question.id] = question
        object.__setattr__(self, "_index", MappingProxyType(index))
        self._check_grading()

    def _check_grading(self) -> None:
        clause = self.clause
        grading = self._index.get(self.grading_question)
        if grading is None:
            raise PolicyError(
                f"form {self.name!r}: grading question {self.grading_question!r} is not "
                "on the form",
                clause=clause,
            )
        if not grading.required:
            raise PolicyError(
                f"form {self.name!r}: grading question {grading.id!r} must be required",
                clause=clause,
            )
        if grading.kind == "scale_0_10":
            bands = self.grade_bands
            if bands is None or self.judgement_scale is not None:
                raise PolicyError(
                    f"form {self.name!r}: scale grading question {grading.id!r} needs "
                    "grade_bands and no judgement_scale",
                    clause=clause,
                )
            if (bands.scale_min, bands.scale_max) != (_SCALE_MIN, _SCALE_MAX):
                raise PolicyError(
                    f"form {self.name!r}: grade bands are on the scale "
                    f"{bands.scale_min}..{bands.scale_max} but question {grading.id!r} "
                    f"is scored {_SCALE_MIN}..{_SCALE_MAX}",
                    clause=clause,
                )
        elif grading.kind == "judgement":
            if self.judgement_scale is None or self.grade_bands is not None:
                raise PolicyError(
                    f"form {self.name!r}: judgement grading question {grading.id!r} needs "
                    "a judgement_scale and no grade_bands",
                    clause=clause,
                )
        elif grading.kind == "grade":
            if self.judgement_scale is not None or self.grade_bands is not None:
                raise PolicyError(
                    f"form {self.name!r}: grade question {grading.id!r} gives the grade "
                    "directly; it takes no grade_bands and no judgement_scale",
                    clause=clause,
                )
        else:
            raise PolicyError(
                f"form {self.name!r}: grading question {grading.id!r} is a {grading.kind} "
                "question; it must be scale_0_10, judgement or grade",
                clause=clause,
            )

    @property
    def questions(self) -> tuple[Question, ...]:
        """Every question, in form order."""
        return tuple(self._index.values())

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages this form uses, in :data:`STAGES` order."""
        used = {section.stage for section in self.sections}
        return tuple(stage for stage in STAGES if stage in used)

    def question(self, question_id: str) -> Question:
        """The question with this id; an unknown id raises ValidationError."""
        try:
            return self._index[question_id]
        except (KeyError, TypeError):
            raise ValidationError(
                field="question_id",
                value=question_id,
                expected=f"the id of a question on form {self.name!r}",
            ) from None

    def section(self, section_id: str) -> Section:
        """The section with this id; an unknown id raises ValidationError."""
        for section in self.sections:
            if section.id == section_id:
                return section
        raise ValidationError(
            field="section_id",
            value=section_id,
            expected=f"the id of a section on form {self.name!r}",
        )

    def questions_answered_by(self, role: str) -> tuple[Question, ...]:
        """The questions ``role`` answers, in form order (e.g. ``"auditor"``)."""
        return tuple(q for q in self._index.values() if q.answered_by == role)

    def questions_in_stage(self, stage: str) -> tuple[Question, ...]:
        """The questions answered in ``stage``, in form order."""
        _check_stage(stage)
        return tuple(q for s in self.sections if s.stage == stage for q in s.questions)

    def required_question_ids(self, stage: str | None = None) -> tuple[str, ...]:
        """Ids of the required questions, of one stage or (``None``) of the whole form."""
        if stage is not None:
            return tuple(q.id for q in self.questions_in_stage(stage) if q.required)
        return tuple(q.id for q in self._index.values() if q.required)

    def stages_through(self, stage: str) -> tuple[Stage, ...]:
        """This form's stages up to and including ``stage`` (it need not be used here)."""
        _check_stage(stage)
        limit = STAGES.index(stage)
        return tuple(s for s in self.stages if STAGES.index(s) <= limit)

    def grade(self, answer: Mapping[str, object]) -> Grade:
        """Validate the grading question's ``answer`` and return the grade it gives."""
        grading = self._index[self.grading_question]
        grading.validate_answer(answer)
        value = answer[grading.answer_key]
        field = f"{grading.id}.{grading.answer_key}"
        if self.grade_bands is not None:
            return self.grade_bands.grade_for(value, field=field)
        if self.judgement_scale is not None:
            return self.judgement_scale.grade_for(value, field=field)
        return direct_grade(value, field=field)  # a grade question (checked when built)

    @property
    def grades(self) -> frozenset[Grade]:
        """The grades this form's grading can give (a judgement scale gives only three)."""
        if self.judgement_scale is not None:
            return frozenset(self.judgement_scale.as_mapping().values())
        if self.grade_bands is not None:
            return frozenset(band.grade for band in self.grade_bands.bands)
        return frozenset(Grade)


def _check_stage(stage: object) -> None:
    if stage not in STAGES:
        raise ValidationError(
            field="stage", value=stage, expected="one of " + ", ".join(map(repr, STAGES))
        )


def _is_valid(question: Question, answer: Mapping[str, object]) -> bool:
    try:
        question.validate_answer(answer)
    except ValidationError:
        return False
    return True


def missing_answers(
    form: AuditForm,
    answers: Mapping[str, Mapping[str, object]],
    *,
    stages: str | Iterable[str] | None = None,
) -> tuple[str, ...]:
    """Ids of the required questions not yet validly answered, in form order.

    ``answers`` maps question ids to answer mappings. ``stages`` limits the check to one
    stage or several (``form.stages_through("meeting")`` before grading); ``None`` checks
    the whole form. An answer that fails :meth:`Question.validate_answer` counts as missing.
    The audit machine guards grading on this being empty.
    """
    if stages is None:
        wanted: set[str] | None = None
    else:
        wanted = {stages} if isinstance(stages, str) else set(stages)
        for stage in wanted:
            _check_stage(stage)
    return tuple(
        section_question.id
        for section in form.sections
        if wanted is None or section.stage in wanted
        for section_question in section.questions
        if section_question.required
        and not (
            section_question.id in answers
            and _is_valid(section_question, answers[section_question.id])
        )
    )


def validate_answers(form: AuditForm, answers: Mapping[str, Mapping[str, object]]) -> None:
    """Raise ValidationError for an unknown question id or any invalid answer.

    Completeness is not checked here; see :func:`missing_answers`.
    """
    for question_id, answer in answers.items():
        form.question(question_id).validate_answer(answer)
