"""Audit forms and grading as frozen, validated policy data.

A council's audit tool is data, not code: an :class:`AuditForm` lists its sections and
questions (what kind of answer each takes, who gives it, which free-text fields go with it,
whether it must be answered), and says how the overall grading question becomes an Ofsted
:class:`Grade` -- through :class:`GradeBands` for a 0-10 scale (BX-AUD-06) or through a
:class:`JudgementScale` for a three-level judgement (BK-AUD-01). A new council writes a new
form with these types; nothing here knows about a particular council.

Every definition is checked when it is built, so a broken policy fails at import time, not
when an audit is graded: bad definitions raise :class:`~qaflow.errors.PolicyError` naming
the offending parts. Answers given at run time are checked by :meth:`Question.validate_answer`
and :func:`validate_answers`, which raise :class:`~qaflow.errors.ValidationError` naming the
field (``"Q7.score"``) and what would have been accepted. Error messages never quote free
text, which may hold personal data.

An answer is a mapping. Its main value sits under the key for the question's kind
(:data:`ANSWER_KEYS`): ``{"score": 7, "strengths": "...", ...}`` for a 0-10 scale,
``{"judgement": "meets_good", "evidence": "...", "impact": "..."}`` for a judgement,
``{"answer": True}`` for yes/no and ``{"text": "..."}`` for free text. The question's
``text_fields`` name the free-text fields that must come with it.

Forms are answered in stages, always in the order of :data:`STAGES`; the audit machine maps
its states onto them (health check before the meeting, every required answer before
grading), so a form may only use these stage names.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, Literal, TypeGuard, get_args

import attrs

from qaflow.errors import PolicyError, ValidationError

__all__ = [
    "ANSWER_KEYS",
    "ROLES",
    "STAGES",
    "AuditForm",
    "Grade",
    "GradeBands",
    "Judgement",
    "JudgementScale",
    "Question",
    "QuestionKind",
    "Role",
    "ScoreBand",
    "Section",
    "Stage",
    "missing_answers",
    "validate_answers",
]

QuestionKind = Literal["scale_0_10", "judgement", "text", "yes_no"]
Role = Literal[
    "practitioner", "auditor", "collaborative", "family", "child", "network", "moderator"
]
Stage = Literal["self_assessment", "health_check", "meeting", "grading", "feedback"]

#: Who may answer a question. ``collaborative`` means auditor and practitioner agree it
#: together in the audit meeting (BX-AUD-05); the auditor records it.
ROLES: Final[tuple[Role, ...]] = get_args(Role)
#: The stages in which a form is answered, in the order the audit machine reaches them.
STAGES: Final[tuple[Stage, ...]] = get_args(Stage)
#: The key under which each kind of question keeps its main value in an answer mapping.
ANSWER_KEYS: Final[Mapping[QuestionKind, str]] = MappingProxyType(
    {"scale_0_10": "score", "judgement": "judgement", "text": "text", "yes_no": "answer"}
)
_KINDS: Final[tuple[QuestionKind, ...]] = get_args(QuestionKind)
_SCALE_MIN: Final = 0
_SCALE_MAX: Final = 10
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an integer; ``bool`` is refused because ``True`` is no score."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ident(what: str, value: object, clause: str | None) -> None:
    """Refuse an id that could not be used as a key in an answer or an error's field name."""
    if not isinstance(value, str) or not _IDENT.match(value):
        raise PolicyError(
            f"{what} must be an identifier (a letter, then letters, digits or '_'), got {value!r}",
            clause=clause,
        )


def _check_text(what: str, value: object, clause: str | None) -> None:
    """Refuse a missing or blank label: every form element must say what it asks."""
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{what} must be a non-empty string, got {value!r}", clause=clause)


class Grade(enum.IntEnum):
    """An Ofsted grade, ordered worst to best so that ``grade < Grade.GOOD`` reads naturally."""

    INADEQUATE = 1
    REQUIRES_IMPROVEMENT = 2
    GOOD = 3
    OUTSTANDING = 4

    @property
    def label(self) -> str:
        """The grade as Ofsted writes it, e.g. ``"Requires improvement"``."""
        return _GRADE_LABELS[self]

    def __repr__(self) -> str:
        # A valid expression, so hypothesis failures and attrs reprs can be pasted back.
        return f"Grade.{self.name}"


_GRADE_LABELS: Final[Mapping[Grade, str]] = MappingProxyType(
    {
        Grade.INADEQUATE: "Inadequate",
        Grade.REQUIRES_IMPROVEMENT: "Requires improvement",
        Grade.GOOD: "Good",
        Grade.OUTSTANDING: "Outstanding",
    }
)


class Judgement(enum.StrEnum):
    """The three-level judgement of a Strengthening Families audit field (BK-AUD-01)."""

    EXCEEDS_GOOD = "exceeds_good"
    MEETS_GOOD = "meets_good"
    DOES_NOT_MEET_GOOD = "does_not_meet_good"

    def __repr__(self) -> str:
        return f"Judgement.{self.name}"

    def __str__(self) -> str:
        # As StrEnum would (it is 3.11+; qaflow supports 3.10): the value, as stored.
        return self.value


def _show_band(band: ScoreBand) -> str:
    return f"{band.low}..{band.high} ({band.grade.label})"


@attrs.frozen
class ScoreBand:
    """Scores ``low`` to ``high`` inclusive map to ``grade``."""

    low: int
    high: int
    grade: Grade

    def __attrs_post_init__(self) -> None:
        if not (_is_int(self.low) and _is_int(self.high)):
            raise PolicyError(
                f"a score band's bounds must be integers, got low={self.low!r}, high={self.high!r}"
            )
        if not isinstance(self.grade, Grade):
            raise PolicyError(f"a score band's grade must be a Grade, got {self.grade!r}")
        if self.low > self.high:
            raise PolicyError(f"score band {self.low}..{self.high} is empty (low > high)")


def _sorted_bands(bands: Iterable[ScoreBand]) -> tuple[ScoreBand, ...]:
    """Keep bands in score order, so equal band sets compare equal however they were listed."""
    items = tuple(bands)
    for band in items:
        if not isinstance(band, ScoreBand):
            raise PolicyError(f"grade bands must be ScoreBand instances, got {band!r}")
    return tuple(sorted(items, key=lambda b: (b.low, b.high)))


@attrs.frozen(kw_only=True)
class GradeBands:
    """Maps every score of a closed integer scale to a grade (BX-AUD-06).

    Built only if the bands are sound: they cover ``scale_min..scale_max`` with no gap
    and no overlap, and a higher score never maps to a worse grade. Bands may be listed in
    any order; they are kept sorted by score.
    """

    bands: tuple[ScoreBand, ...] = attrs.field(converter=_sorted_bands)
    scale_min: int = _SCALE_MIN
    scale_max: int = _SCALE_MAX
    clause: str | None = None
    _by_score: tuple[Grade, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        clause = self.clause
        if not (_is_int(self.scale_min) and _is_int(self.scale_max)):
            raise PolicyError(
                f"a scale's bounds must be integers, got {self.scale_min!r}..{self.scale_max!r}",
                clause=clause,
            )
        if self.scale_min > self.scale_max:
            raise PolicyError(f"scale {self.scale_min}..{self.scale_max} is empty", clause=clause)
        if not self.bands:
            raise PolicyError("grade bands must list at least one band", clause=clause)
        scale = f"scale {self.scale_min}..{self.scale_max}"
        for band in self.bands:
            if band.low < self.scale_min or band.high > self.scale_max:
                raise PolicyError(
                    f"grade bands: band {_show_band(band)} lies outside the {scale}", clause=clause
                )
        first, last = self.bands[0], self.bands[-1]
        if first.low != self.scale_min:
            raise PolicyError(
                f"grade bands: scores {self.scale_min}..{first.low - 1} of the {scale} have no "
                f"band (first band is {_show_band(first)})",
                clause=clause,
            )
        for before, after in zip(self.bands, self.bands[1:], strict=False):
            if after.low > before.high + 1:
                raise PolicyError(
                    f"grade bands: gap between bands {_show_band(before)} and {_show_band(after)}: "
                    f"scores {before.high + 1}..{after.low - 1} have no band",
                    clause=clause,
                )
            if after.low <= before.high:
                raise PolicyError(
                    f"grade bands: bands {_show_band(before)} and {_show_band(after)} overlap on "
                    f"scores {after.low}..{min(before.high, after.high)}",
                    clause=clause,
                )
            if after.grade < before.grade:
                raise PolicyError(
                    f"grade bands: band {_show_band(after)} maps higher scores to a worse grade "
                    f"than band {_show_band(before)}",
                    clause=clause,
                )
        if last.high != self.scale_max:
            raise PolicyError(
                f"grade bands: scores {last.high + 1}..{self.scale_max} of the {scale} have no "
                f"band (last band is {_show_band(last)})",
                clause=clause,
            )
        lookup = tuple(band.grade for band in self.bands for _ in range(band.low, band.high + 1))
        object.__setattr__(self, "_by_score", lookup)

    def grade_for(self, score: object, *, field: str = "score") -> Grade:
        """The grade of ``score``; a non-integer or off-scale score raises ValidationError."""
        if _is_int(score) and self.scale_min <= score <= self.scale_max:
            return self._by_score[score - self.scale_min]
        raise ValidationError(
            field=field,
            value=score,
            expected=f"an integer in {self.scale_min}..{self.scale_max}",
        )


@attrs.frozen(kw_only=True)
class JudgementScale:
    """Maps each three-level judgement to an Ofsted grade (BK-AUD-01).

    The mapping must agree with the judgements' names: ``meets_good`` is Good,
    ``exceeds_good`` is Good or better, ``does_not_meet_good`` is worse than Good. That
    makes it monotone: a better judgement never maps to a worse grade.
    """

    exceeds_good: Grade
    meets_good: Grade
    does_not_meet_good: Grade
    clause: str | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("exceeds_good", "meets_good", "does_not_meet_good"):
            if not isinstance(getattr(self, name), Grade):
                raise PolicyError(
                    f"judgement {name!r} must map to a Grade, got {getattr(self, name)!r}",
                    clause=self.clause,
                )
        if self.meets_good is not Grade.GOOD:
            raise PolicyError(
                f"'meets_good' must map to Grade.GOOD, got {self.meets_good!r}",
                clause=self.clause,
            )
        if self.exceeds_good < Grade.GOOD:
            raise PolicyError(
                f"'exceeds_good' must map to Good or better, got {self.exceeds_good!r}",
                clause=self.clause,
            )
        if self.does_not_meet_good >= Grade.GOOD:
            raise PolicyError(
                "'does_not_meet_good' must map to a grade worse than Good, "
                f"got {self.does_not_meet_good!r}",
                clause=self.clause,
            )

    def as_mapping(self) -> Mapping[Judgement, Grade]:
        """The scale as a read-only mapping, best judgement first."""
        return MappingProxyType(
            {
                Judgement.EXCEEDS_GOOD: self.exceeds_good,
                Judgement.MEETS_GOOD: self.meets_good,
                Judgement.DOES_NOT_MEET_GOOD: self.does_not_meet_good,
            }
        )

    def grade_for(self, judgement: object, *, field: str = "judgement") -> Grade:
        """The grade of ``judgement`` (a :class:`Judgement` or its string value)."""
        return self.as_mapping()[_judgement(judgement, field)]


def _judgement(value: object, field: str) -> Judgement:
    """Parse a judgement; anything but one of the three values raises ValidationError."""
    if isinstance(value, str):
        try:
            return Judgement(value)
        except ValueError:
            pass
    raise ValidationError(
        field=field,
        value=value,
        expected="one of " + ", ".join(repr(j.value) for j in Judgement),
    )


def _str_tuple(items: Iterable[str]) -> tuple[str, ...]:
    # A lone string would otherwise become a tuple of its letters.
    if isinstance(items, str):
        raise PolicyError(f"text_fields must be a sequence of names, not the string {items!r}")
    return tuple(items)


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
        else:
            raise PolicyError(
                f"form {self.name!r}: grading question {grading.id!r} is a {grading.kind} "
                "question; it must be scale_0_10 or judgement",
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
        assert self.judgement_scale is not None  # guaranteed by _check_grading
        return self.judgement_scale.grade_for(value, field=field)


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
