"""Audit forms and grading as policy data: the BX and BK forms, bands and answer checks.

Each example test names the clause it enforces; the property tests check invariants I10
(grade bands) and I11 (cattrs round-trip) on the shipped policies and on generated ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qaflow.errors import PolicyError, ValidationError
from qaflow.policies import bexley, buckinghamshire
from qaflow.policies.forms import (
    ANSWER_KEYS,
    ROLES,
    STAGES,
    AuditForm,
    Grade,
    GradeBands,
    Judgement,
    JudgementScale,
    Question,
    ScoreBand,
    Section,
    missing_answers,
    validate_answers,
)

FORMS = {"bexley": bexley.AUDIT_FORM, "buckinghamshire": buckinghamshire.AUDIT_FORM}
BX_AUDIT = bexley.BEXLEY_AUDIT
BK_AUDIT = buckinghamshire.BUCKINGHAMSHIRE_AUDIT
BK_GIVES = BK_AUDIT.form.grades
SECRET = "free text about a child, which may name them or their family"


# --- helpers and strategies -------------------------------------------------------------


_DEFAULT = object()


def valid_answer(question: Question, main: object = _DEFAULT) -> dict[str, object]:
    """A complete answer for ``question``; ``main`` overrides the kind's default value."""
    defaults: dict[str, object] = {
        "scale_0_10": 6,
        "judgement": "meets_good",
        "yes_no": False,
        "text": "some text",
    }
    answer: dict[str, object] = {
        question.answer_key: defaults[question.kind] if main is _DEFAULT else main
    }
    answer.update({name: f"{name} text" for name in question.text_fields})
    return answer


def all_answers(form: AuditForm, *, required_only: bool = False) -> dict[str, Any]:
    return {q.id: valid_answer(q) for q in form.questions if q.required or not required_only}


def assert_bands_hold_i10(bands: GradeBands) -> None:
    """I10, checked from the outside: total on the scale, monotone, nothing off-scale."""
    scores = range(bands.scale_min, bands.scale_max + 1)
    grades = [bands.grade_for(score) for score in scores]
    assert grades == sorted(grades)
    for score in scores:
        owners = [b for b in bands.bands if b.low <= score <= b.high]
        assert len(owners) == 1
        assert owners[0].grade is bands.grade_for(score)
    for outside in (bands.scale_min - 1, bands.scale_max + 1):
        with pytest.raises(ValidationError):
            bands.grade_for(outside)


@st.composite
def band_layouts(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, int, Grade]]]:
    """A valid scale and bands: contiguous cuts with non-decreasing grades."""
    scale_min = draw(st.integers(-20, 20))
    scale_max = draw(st.integers(scale_min, scale_min + 30))
    inner = range(scale_min + 1, scale_max + 1)
    cuts = sorted(draw(st.sets(st.sampled_from(inner), max_size=6))) if inner else []
    lows = [scale_min, *cuts]
    highs = [c - 1 for c in cuts] + [scale_max]
    grades = sorted(draw(st.lists(st.sampled_from(Grade), min_size=len(lows), max_size=len(lows))))
    return scale_min, scale_max, list(zip(lows, highs, grades, strict=True))


@st.composite
def grade_bands(draw: st.DrawFn) -> GradeBands:
    scale_min, scale_max, layout = draw(band_layouts())
    bands = draw(st.permutations([ScoreBand(lo, hi, g) for lo, hi, g in layout]))
    return GradeBands(bands=bands, scale_min=scale_min, scale_max=scale_max)


@st.composite
def broken_band_sets(draw: st.DrawFn) -> tuple[int, int, list[ScoreBand], str]:
    """Bands that break I10 in one named way: gap, overlap, inversion or out of scale."""
    scale_min, scale_max, layout = draw(band_layouts())
    bands = [list(b) for b in layout]
    breaks = ["below", "above"]
    if len(bands) >= 2:
        breaks += ["gap", "overlap"]
        if bands[0][2] != Grade.OUTSTANDING or bands[-1][2] != Grade.INADEQUATE:
            breaks.append("inversion")
    if any(hi > lo for lo, hi, _ in bands):
        breaks.append("hole")
    how = draw(st.sampled_from(breaks))
    if how == "below":
        bands[0][0] -= draw(st.integers(1, 3))
    elif how == "above":
        bands[-1][1] += draw(st.integers(1, 3))
    elif how in ("gap", "overlap", "inversion"):
        i = draw(st.integers(0, len(bands) - 2))
        if how == "gap":
            # widen the seam: drop the first score of the next band (if it has spare) or
            # the last of this one
            if bands[i + 1][1] > bands[i + 1][0]:
                bands[i + 1][0] += 1
            elif bands[i][1] > bands[i][0]:
                bands[i][1] -= 1
            else:
                del bands[i + 1]  # a removed middle or end band leaves a hole
        elif how == "overlap":
            bands[i][1] += 1
        else:
            bands = [[lo, hi, Grade(5 - g)] for lo, hi, g in bands]
            if all(b[2] == bands[0][2] for b in bands):  # constant grades cannot invert
                bands[0][2] = Grade.OUTSTANDING
                bands[-1][2] = Grade.INADEQUATE
    else:  # a hole in the middle of one band: split it and drop a score
        candidates = [b for b in bands if b[1] > b[0]]
        band = draw(st.sampled_from(candidates))
        at = draw(st.integers(band[0], band[1] - 1))
        bands.insert(bands.index(band) + 1, [at + 2, band[1], band[2]])
        band[1] = at
        bands = [b for b in bands if b[0] <= b[1]]
    return scale_min, scale_max, [ScoreBand(lo, hi, Grade(g)) for lo, hi, g in bands], how


idents = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
labels = st.text(st.characters(codec="utf-8"), min_size=1).filter(str.strip)


@st.composite
def questions(draw: st.DrawFn, qid: str, section: str) -> Question:
    kind = draw(st.sampled_from(list(ANSWER_KEYS)))
    fields = draw(
        st.lists(idents.filter(lambda n: n not in ANSWER_KEYS.values()), unique=True, max_size=3)
    )
    anchors = draw(st.none() | st.tuples(labels, labels)) if kind == "scale_0_10" else None
    return Question(
        id=qid,
        section=section,
        text=draw(labels),
        kind=kind,
        answered_by=draw(st.sampled_from(ROLES)),
        required=draw(st.booleans()),
        text_fields=fields,
        guidance=draw(st.text(max_size=20)),
        anchors=anchors,
        clause=draw(st.none() | st.sampled_from(["BX-AUD-05", "BK-AUD-01"])),
    )


@st.composite
def audit_forms(draw: st.DrawFn) -> AuditForm:
    """A random valid form: unique ids, and a required grading question of a graded kind."""
    section_ids = draw(st.lists(idents, min_size=1, max_size=3, unique=True))
    question_ids = iter(draw(st.lists(idents, min_size=6, max_size=6, unique=True)))
    sections = []
    for sid in section_ids:
        qs = [draw(questions(next(question_ids), sid)) for _ in range(draw(st.integers(1, 2)))]
        sections.append(
            Section(id=sid, title=draw(labels), stage=draw(st.sampled_from(STAGES)), questions=qs)
        )
    graded_by_scale = draw(st.booleans())
    grading = attrs.evolve(
        sections[-1].questions[0],
        kind="scale_0_10" if graded_by_scale else "judgement",
        required=True,
        anchors=None,
    )
    sections[-1] = attrs.evolve(sections[-1], questions=(grading, *sections[-1].questions[1:]))
    if graded_by_scale:
        return AuditForm(
            name=draw(labels),
            sections=sections,
            grading_question=grading.id,
            grade_bands=bexley.GRADE_BANDS,
        )
    return AuditForm(
        name=draw(labels),
        sections=sections,
        grading_question=grading.id,
        judgement_scale=buckinghamshire.JUDGEMENT_SCALE,
    )


def roundtrip(value: object) -> object:
    """I11: unstructure, through JSON text, and structure back with a plain converter."""
    converter = cattrs.Converter()
    text = json.dumps(converter.unstructure(value))
    return converter.structure(json.loads(text), type(value))


# --- grades ---------------------------------------------------------------------------


def test_grades_are_ordered_worst_to_best_with_ofsted_labels() -> None:
    assert list(Grade) == sorted(Grade)
    assert Grade.INADEQUATE < Grade.REQUIRES_IMPROVEMENT < Grade.GOOD < Grade.OUTSTANDING
    assert [g.label for g in Grade] == [
        "Inadequate",
        "Requires improvement",
        "Good",
        "Outstanding",
    ]
    assert repr(Grade.GOOD) == "Grade.GOOD"
    assert eval(repr(Grade.GOOD)) is Grade.GOOD


def test_judgements_are_the_three_bk_values() -> None:
    assert [j.value for j in Judgement] == ["exceeds_good", "meets_good", "does_not_meet_good"]
    assert str(Judgement.MEETS_GOOD) == "meets_good"
    assert Judgement("meets_good") is Judgement.MEETS_GOOD
    assert eval(repr(Judgement.MEETS_GOOD)) is Judgement.MEETS_GOOD


# --- Bexley (BX) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "grade"),
    [(0, "INADEQUATE"), (2, "INADEQUATE"), (3, "REQUIRES_IMPROVEMENT"), (5, "REQUIRES_IMPROVEMENT"),
     (6, "GOOD"), (7, "OUTSTANDING"), (10, "OUTSTANDING")],
)  # fmt: skip
def test_BX_AUD_06_score_bands(score: int, grade: str) -> None:
    assert bexley.GRADE_BANDS.grade_for(score) is Grade[grade]


def test_BX_AUD_06_shipped_bands_hold_i10() -> None:
    assert (bexley.GRADE_BANDS.scale_min, bexley.GRADE_BANDS.scale_max) == (0, 10)
    assert_bands_hold_i10(bexley.GRADE_BANDS)


@pytest.mark.parametrize("score", [11, -1, 3.5, True, "6", None])
def test_BX_AUD_06_grade_for_refuses_off_scale_and_non_int(score: object) -> None:
    with pytest.raises(ValidationError) as info:
        bexley.GRADE_BANDS.grade_for(score)
    assert info.value.field == "score"
    assert info.value.expected == "an integer in 0..10"


def test_BX_AUD_06_overall_grading_question() -> None:
    form = bexley.AUDIT_FORM
    overall = form.question(bexley.GRADING_QUESTION)
    assert (overall.kind, overall.answered_by, overall.required) == (
        "scale_0_10",
        "auditor",
        True,
    )
    assert "rationale" in overall.text_fields
    assert form.grade(valid_answer(overall, 6)) is Grade.GOOD
    assert form.grade(valid_answer(overall, 2)) is Grade.INADEQUATE
    assert form.grade(valid_answer(overall, 7)) is Grade.OUTSTANDING
    with pytest.raises(ValidationError) as info:
        form.grade(valid_answer(overall, 11))
    assert info.value.field == "overall.score"


def test_BX_AUD_03_self_assessment_two_practitioner_scales() -> None:
    section = bexley.AUDIT_FORM.section("self_assessment")
    assert section.stage == "self_assessment"
    assert [q.id for q in section.questions] == ["SA1", "SA2"]
    for q in section.questions:
        assert (q.kind, q.answered_by, q.required) == ("scale_0_10", "practitioner", True)
        assert q.text_fields == ("what_worked_well", "what_would_move_it_up")
        assert q.anchors is not None
    anchors = [q.anchors for q in section.questions]
    assert anchors == [("No difference", "Significant difference"), ("Never", "Always use")]


def test_BX_AUD_04_health_check_q1_to_q5_auditor_before_meeting() -> None:
    form = bexley.AUDIT_FORM
    section = form.section("health_check")
    assert [q.id for q in section.questions] == ["Q1", "Q2", "Q3", "Q4", "Q5"]
    for q in section.questions:
        assert (q.kind, q.answered_by, q.required) == ("scale_0_10", "auditor", True)
        assert q.text_fields == ("strengths", "areas_to_develop")
    assert form.stages.index("health_check") < form.stages.index("meeting")


def test_BX_AUD_05_areas_of_practice_q6_to_q18_collaborative_and_q19_auditor() -> None:
    section = bexley.AUDIT_FORM.section("areas_of_practice")
    assert section.stage == "meeting"
    assert [q.id for q in section.questions] == [f"Q{n}" for n in range(6, 20)]
    for q in section.questions[:-1]:
        assert (q.kind, q.answered_by, q.required) == ("scale_0_10", "collaborative", True)
        assert q.text_fields == (
            "signs_of_impact",
            "file_reference",
            "strengths",
            "areas_to_develop",
            "rationale",
        )
        assert q.guidance and q.anchors is not None
    q19 = section.questions[-1]
    assert (q19.kind, q19.answered_by, q19.required) == ("scale_0_10", "auditor", True)
    assert "management oversight" in q19.text


def test_BX_AUD_07_nine_family_statements_scored_0_to_10() -> None:
    form = bexley.AUDIT_FORM
    statements = [form.question(qid) for qid in bexley.FAMILY_STATEMENT_IDS]
    assert len(statements) == 9
    for q in statements:
        assert (q.kind, q.answered_by, q.section) == ("scale_0_10", "family", "family_feedback")
        assert q.anchors == ("Strongly disagree", "Strongly agree")
    assert statements[0].text.startswith("My worker listens to me")
    assert statements[-1].text == "My worker cares that we solve our problems."


def test_BX_AUD_07_feedback_is_optional_on_the_form() -> None:
    # Feedback may be unobtainable; the machine records why instead (BX-AUD-07).
    form = bexley.AUDIT_FORM
    feedback = form.questions_in_stage("feedback")
    assert {q.section for q in feedback} == {
        "child_feedback",
        "family_feedback",
        "network_feedback",
    }
    assert not any(q.required for q in feedback)
    assert form.required_question_ids("feedback") == ()
    assert {q.answered_by for q in feedback} == {"child", "family", "network"}
    assert len(form.questions_answered_by("child")) == 8


def test_BX_AUD_11_practice_observation_question() -> None:
    q = bexley.AUDIT_FORM.question("practice_observation")
    assert (q.kind, q.answered_by) == ("yes_no", "auditor")
    (rule,) = [r for r in BX_AUDIT.grade_rules if r.clause == "BX-AUD-11"]
    assert rule.required_actions == ("practice_observation",)
    assert rule.grades == {Grade.INADEQUATE}
    assert BX_AUDIT.practice_week_action == "practice_observation"


def test_BX_AUD_01_09_13_audit_timescales() -> None:
    assert BX_AUDIT.auditor_from_other_team is True
    assert BX_AUDIT.other_team_clause == "BX-AUD-01"
    assert BX_AUDIT.follow_up is not None
    assert BX_AUDIT.follow_up.within == "5 WD"
    assert BX_AUDIT.monthly_clause == "BX-AUD-13"
    (rule,) = [r for r in BX_AUDIT.grade_rules if r.clause == "BX-AUD-08"]
    assert rule.immediate_actions
    assert rule.grades == {g for g in Grade if g < Grade.GOOD}  # BX-AUD-08


def test_BX_AUD_12_inadequate_notifications_and_24h_tasks() -> None:
    assert bexley.INADEQUATE_NOTIFY_ROLES == (
        "worker",
        "team_manager",
        "service_manager",
        "head_of_service",
        "assistant_director",
        "psqa",
    )
    (rule,) = [r for r in BX_AUDIT.grade_rules if r.clause == "BX-AUD-12"]
    assert [t.within for t in rule.tasks] == ["24 h", "24 h"]


def test_BX_MOD_01_06_moderation_constants() -> None:
    policy = bexley.BEXLEY_MODERATION
    assert policy.sample.lookback == "6 months"
    assert BX_AUDIT.moderation_window == "6 months"
    assert set(bexley.MODERATOR_ROLES) == {
        "consultant_social_worker",
        "cp_chair",
        "iro",
        "service_manager",
        "head_of_service",
        "deputy_director",
    }
    assert policy.follow_up_notice is not None and policy.inadequate_notice is not None
    assert policy.follow_up_notice.roles == ("worker", "team_manager", "service_manager")
    assert [t.within for t in policy.follow_up_tasks] == ["24 h", "24 h"]
    assert "psqa" in policy.inadequate_notice.roles


def test_BX_AUD_required_answers_by_stage() -> None:
    form = bexley.AUDIT_FORM
    assert form.stages == ("self_assessment", "health_check", "meeting", "grading", "feedback")
    before_grading = form.stages_through("meeting")
    assert before_grading == ("self_assessment", "health_check", "meeting")
    required = missing_answers(form, {}, stages=before_grading)
    assert required == ("practice_observation", "SA1", "SA2", *(f"Q{n}" for n in range(1, 20)))
    assert missing_answers(form, {}) == (*required, "overall")
    assert missing_answers(form, all_answers(form, required_only=True)) == ()


# --- Buckinghamshire (BK) ---------------------------------------------------------------


def test_BK_AUD_01_twelve_fields() -> None:
    # App. 1 has eleven practice fields and an overall grading row judged the same way:
    # twelve rows, each judged exceeds / meets / does not meet good with evidence and impact.
    form = buckinghamshire.AUDIT_FORM
    judged = [q for q in form.questions if q.kind == "judgement"]
    assert len(judged) == 12
    assert [q.id for q in judged] == [*buckinghamshire.FIELD_IDS, "overall"]
    for q in judged:
        assert q.text_fields == ("evidence", "impact")
        assert (q.answered_by, q.required) == ("auditor", True)
    assert form.grading_question == "overall"
    assert form.stages == ("meeting", "grading")
    assert not form.question("additional_comments").required


@pytest.mark.parametrize(
    ("judgement", "grade"),
    [
        ("exceeds_good", Grade.OUTSTANDING),
        ("meets_good", Grade.GOOD),
        ("does_not_meet_good", Grade.REQUIRES_IMPROVEMENT),
        (Judgement.MEETS_GOOD, Grade.GOOD),
    ],
)
def test_BK_AUD_01_judgement_scale(judgement: str, grade: Grade) -> None:
    scale = buckinghamshire.JUDGEMENT_SCALE
    assert scale.grade_for(judgement) is grade
    overall = buckinghamshire.AUDIT_FORM.question("overall")
    assert buckinghamshire.AUDIT_FORM.grade(valid_answer(overall, judgement)) is grade


def test_BK_AUD_01_judgement_scale_is_monotone_and_never_inadequate() -> None:
    mapping = buckinghamshire.JUDGEMENT_SCALE.as_mapping()
    grades = list(mapping.values())  # best judgement first
    assert grades == sorted(grades, reverse=True)
    assert Grade.INADEQUATE not in grades


@pytest.mark.parametrize("bad", ["meets", "Meets good", 2, None, True])
def test_BK_AUD_01_judgement_answer_refused(bad: object) -> None:
    q = buckinghamshire.AUDIT_FORM.question("plans")
    with pytest.raises(ValidationError) as info:
        q.validate_answer(valid_answer(q, bad))
    assert info.value.field == "plans.judgement"
    assert "'meets_good'" in info.value.expected


def test_BK_AUD_02_to_05_timescales_and_roles() -> None:
    assert BK_AUDIT.completion_limit is not None
    assert BK_AUDIT.completion_limit.within == "3 weeks"  # BK-AUD-02
    assert BK_AUDIT.lookback == "6 months"  # BK-AUD-03
    assert BK_AUDIT.lookback_may_extend is True
    assert BK_AUDIT.safeguarding is not None and BK_AUDIT.safeguarding.roles  # BK-AUD-04
    (rule,) = BK_AUDIT.grade_rules  # BK-AUD-05: below Good (what the judgements can give)
    assert rule.grades == {Grade.REQUIRES_IMPROVEMENT} == {g for g in BK_GIVES if g < Grade.GOOD}


def test_BK_MOD_01_monthly_sample() -> None:
    sample = buckinghamshire.BUCKINGHAMSHIRE_MODERATION.sample
    assert sample.lookback == "1 month"
    assert 0 < sample.share <= 1
    assert sample.minimum >= 1


def test_policy_durations_parse() -> None:
    calendar = pytest.importorskip("qaflow.calendar")
    assert BX_AUDIT.follow_up is not None and BK_AUDIT.completion_limit is not None
    for text in (
        BX_AUDIT.follow_up.within,
        BX_AUDIT.moderation_window,
        bexley.BEXLEY_MODERATION.sample.lookback,
        BK_AUDIT.completion_limit.within,
        BK_AUDIT.lookback,
        BK_AUDIT.moderation_window,
        *(t.within for r in BX_AUDIT.grade_rules for t in r.tasks if t.within),
    ):
        duration = calendar.Duration.parse(text)
        assert calendar.Duration.parse(str(duration)) == duration


# --- forms in general -------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_form_lookups(form: AuditForm) -> None:
    ids = [q.id for q in form.questions]
    assert len(ids) == len(set(ids))
    for q in form.questions:
        assert form.question(q.id) is q
        assert q in form.questions_answered_by(q.answered_by)
        assert q in form.section(q.section).questions
        assert q.clause is not None
    with pytest.raises(ValidationError) as info:
        form.question("no_such_question")
    assert info.value.field == "question_id"
    with pytest.raises(ValidationError):
        form.required_question_ids("no_such_stage")


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_missing_answers_counts_invalid_answers_as_missing(form: AuditForm) -> None:
    answers = all_answers(form)
    validate_answers(form, answers)
    assert missing_answers(form, answers) == ()
    grading = form.question(form.grading_question)
    answers[grading.id] = {grading.answer_key: answers[grading.id][grading.answer_key]}
    if grading.text_fields:
        assert missing_answers(form, answers) == (grading.id,)
    answers.pop(grading.id)
    assert missing_answers(form, answers) == (grading.id,)
    assert missing_answers(form, answers, stages="grading") == (grading.id,)
    assert missing_answers(form, answers, stages=[s for s in form.stages if s != "grading"]) == ()


def test_validate_answers_refuses_unknown_question() -> None:
    with pytest.raises(ValidationError) as info:
        validate_answers(bexley.AUDIT_FORM, {"Q99": {"score": 1}})
    assert info.value.field == "question_id"


def test_validate_answer_requires_every_text_field_without_quoting_it() -> None:
    q = bexley.AUDIT_FORM.question("Q7")
    answer = valid_answer(q, 5)
    answer["rationale"] = SECRET
    q.validate_answer(answer)
    for name, bad in [("file_reference", None), ("strengths", "  "), ("rationale", 3)]:
        broken = {**answer, name: bad}
        if bad is None:
            del broken[name]
        with pytest.raises(ValidationError) as info:
            q.validate_answer(broken)
        assert info.value.field == f"Q7.{name}"
        assert info.value.expected == "a non-empty string"
    with pytest.raises(ValidationError) as info:
        q.validate_answer({**answer, "rationle": SECRET})
    assert info.value.field == "Q7.rationle"
    with pytest.raises(ValidationError) as info:
        q.validate_answer({**answer, "score": SECRET})
    assert SECRET not in str(info.value)


def test_yes_no_and_text_answers() -> None:
    yes_no = bexley.AUDIT_FORM.question("practice_observation")
    yes_no.validate_answer({"answer": True})
    with pytest.raises(ValidationError) as info:
        yes_no.validate_answer({"answer": 1})
    assert info.value.field == "practice_observation.answer"
    text = bexley.AUDIT_FORM.question("F_views")
    text.validate_answer({"text": SECRET})
    with pytest.raises(ValidationError) as info:
        text.validate_answer({"text": ""})
    assert info.value.field == "F_views.text"
    with pytest.raises(ValidationError):
        text.validate_answer([("text", "x")])  # type: ignore[arg-type]


# --- definitions are refused when they are built ------------------------------------------


def q(qid: str = "Q1", section: str = "s", **changes: Any) -> Question:
    fields: dict[str, Any] = {
        "id": qid,
        "section": section,
        "text": "A question",
        "kind": "scale_0_10",
        "answered_by": "auditor",
    }
    fields.update(changes)
    return Question(**fields)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"kind": "scale_1_5"}, "kind must be one of"),
        ({"answered_by": "manager"}, "answered_by must be one of"),
        ({"id": "Q 1"}, "identifier"),
        ({"id": ""}, "identifier"),
        ({"text": " "}, "non-empty"),
        ({"text_fields": ("a", "a")}, "listed twice"),
        ({"text_fields": ("score",)}, "clashes with an answer key"),
        ({"text_fields": ("bad field",)}, "identifier"),
        ({"text_fields": "rationale"}, "not the string"),
        ({"kind": "text", "anchors": ("low", "high")}, "only a scale_0_10"),
        ({"anchors": ("only one",)}, "pair"),
        ({"required": "yes"}, "required must be a bool"),
    ],
)
def test_bad_question_refused(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError, match=words):
        q(**changes)


def test_bad_sections_and_forms_refused() -> None:
    with pytest.raises(PolicyError, match="no questions"):
        Section(id="s", title="S", stage="meeting", questions=())
    with pytest.raises(PolicyError, match="stage must be one of"):
        Section(id="s", title="S", stage="lunch", questions=(q(),))  # type: ignore[arg-type]
    with pytest.raises(PolicyError, match="belongs to section 't'"):
        Section(id="s", title="S", stage="meeting", questions=(q(section="t"),))

    def form(*sections: Section, grading: str = "Q1", **kw: Any) -> AuditForm:
        kw.setdefault("grade_bands", bexley.GRADE_BANDS)
        return AuditForm(name="f", sections=sections, grading_question=grading, **kw)

    s = Section(id="s", title="S", stage="meeting", questions=(q(),))
    form(s)
    with pytest.raises(PolicyError, match="no sections"):
        form()
    with pytest.raises(PolicyError, match="section id 's' is used twice"):
        form(s, s)
    t = Section(id="t", title="T", stage="grading", questions=(q("Q1", "t"),))
    with pytest.raises(PolicyError, match="question id 'Q1' is used in sections 's' and 't'"):
        form(s, t)
    with pytest.raises(PolicyError, match="not on the form"):
        form(s, grading="Q2")
    optional = Section(id="s", title="S", stage="meeting", questions=(q(required=False),))
    with pytest.raises(PolicyError, match="must be required"):
        form(optional)
    with pytest.raises(PolicyError, match="needs grade_bands"):
        form(s, grade_bands=None)
    with pytest.raises(PolicyError, match="needs grade_bands and no judgement_scale"):
        form(s, judgement_scale=buckinghamshire.JUDGEMENT_SCALE)
    five = GradeBands(bands=[ScoreBand(0, 5, Grade.GOOD)], scale_min=0, scale_max=5)
    with pytest.raises(PolicyError, match=r"scale 0\.\.5"):
        form(s, grade_bands=five)
    judged = Section(id="s", title="S", stage="meeting", questions=(q(kind="judgement"),))
    with pytest.raises(PolicyError, match="needs a judgement_scale"):
        form(judged)
    text = Section(id="s", title="S", stage="meeting", questions=(q(kind="text"),))
    with pytest.raises(PolicyError, match="must be scale_0_10, judgement or grade"):
        form(text)


@pytest.mark.parametrize(
    ("grades", "words"),
    [
        ((Grade.OUTSTANDING, Grade.REQUIRES_IMPROVEMENT, Grade.INADEQUATE), "'meets_good'"),
        ((Grade.REQUIRES_IMPROVEMENT, Grade.GOOD, Grade.INADEQUATE), "'exceeds_good'"),
        ((Grade.OUTSTANDING, Grade.GOOD, Grade.GOOD), "'does_not_meet_good'"),
        ((Grade.OUTSTANDING, Grade.GOOD, 1), "must map to a Grade"),
    ],
)
def test_BK_AUD_01_bad_judgement_scale_refused(grades: tuple[Grade, ...], words: str) -> None:
    exceeds, meets, does_not = grades
    with pytest.raises(PolicyError, match=words) as info:
        JudgementScale(
            exceeds_good=exceeds, meets_good=meets, does_not_meet_good=does_not, clause="BK-AUD-01"
        )
    assert info.value.clause == "BK-AUD-01"


def test_BX_AUD_06_bad_bands_name_the_offending_bands() -> None:
    def bands(*triples: tuple[int, int, Grade]) -> GradeBands:
        return GradeBands(bands=[ScoreBand(*t) for t in triples], clause="BX-AUD-06")

    ri, good = Grade.REQUIRES_IMPROVEMENT, Grade.GOOD
    with pytest.raises(PolicyError, match=r"gap between bands 0..4 .* and 6..10") as info:
        bands((0, 4, ri), (6, 10, good))
    assert info.value.clause == "BX-AUD-06"
    with pytest.raises(PolicyError, match=r"bands 0..6 .* and 5..10 .* overlap on scores 5..6"):
        bands((0, 6, ri), (5, 10, good))
    with pytest.raises(PolicyError, match=r"band 6..10 \(Requires improvement\) maps higher"):
        bands((0, 5, good), (6, 10, ri))
    with pytest.raises(PolicyError, match=r"scores 0\.\.0 .* have no band"):
        bands((1, 10, good))
    with pytest.raises(PolicyError, match=r"scores 10\.\.10 .* have no band"):
        bands((0, 9, good))
    with pytest.raises(PolicyError, match="outside the scale"):
        bands((0, 11, good))
    with pytest.raises(PolicyError, match="at least one band"):
        bands()
    with pytest.raises(PolicyError, match="empty"):
        ScoreBand(5, 4, good)
    with pytest.raises(PolicyError, match="integers"):
        ScoreBand(True, 4, good)
    with pytest.raises(PolicyError, match="must be a Grade"):
        ScoreBand(0, 4, 3)  # type: ignore[arg-type]


# --- properties -----------------------------------------------------------------------------


@given(grade_bands())
def test_I10_generated_bands_are_total_and_monotone(bands: GradeBands) -> None:
    assert_bands_hold_i10(bands)
    assert [b.low for b in bands.bands] == sorted(b.low for b in bands.bands)


@given(band_layouts(), st.randoms(use_true_random=False))
def test_I10_band_order_does_not_matter(layout: Any, rnd: Any) -> None:
    scale_min, scale_max, triples = layout
    given_order = [ScoreBand(*t) for t in triples]
    shuffled = list(given_order)
    rnd.shuffle(shuffled)
    a = GradeBands(bands=given_order, scale_min=scale_min, scale_max=scale_max)
    b = GradeBands(bands=shuffled, scale_min=scale_min, scale_max=scale_max)
    assert a == b and hash(a) == hash(b)


@given(broken_band_sets())
def test_I10_broken_band_sets_are_refused(case: tuple[int, int, list[ScoreBand], str]) -> None:
    scale_min, scale_max, bands, how = case
    with pytest.raises(PolicyError, match="grade bands") as info:
        GradeBands(bands=bands, scale_min=scale_min, scale_max=scale_max, clause="X-01")
    assert info.value.clause == "X-01", how


@given(
    st.sampled_from([11, -1, 3.5, True, False])
    | st.integers().filter(lambda n: not 0 <= n <= 10)
    | st.floats()
    | st.text(max_size=3)
    | st.none(),
    st.sampled_from(
        [q for form in FORMS.values() for q in form.questions if q.kind == "scale_0_10"]
    ),
)
def test_validate_answer_refuses_bad_scores(score: object, question: Question) -> None:
    with pytest.raises(ValidationError) as info:
        question.validate_answer(valid_answer(question, score))
    assert info.value.field == f"{question.id}.score"
    assert info.value.expected == "an integer in 0..10"
    assert "0..10" in str(info.value)


@given(st.integers(0, 10), st.sampled_from(bexley.AUDIT_FORM.questions))
def test_validate_answer_accepts_every_valid_score(score: int, question: Question) -> None:
    if question.kind == "scale_0_10":
        question.validate_answer(valid_answer(question, score))
    else:
        question.validate_answer(valid_answer(question))


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_I11_shipped_forms_roundtrip(form: AuditForm) -> None:
    back = roundtrip(form)
    assert back == form
    assert isinstance(back, AuditForm)
    assert back.questions == form.questions  # derived index rebuilt on structure


@pytest.mark.parametrize(
    "value",
    [bexley.GRADE_BANDS, buckinghamshire.JUDGEMENT_SCALE],
    ids=["grade_bands", "judgement_scale"],
)
def test_I11_shipped_grading_roundtrips(value: object) -> None:
    assert roundtrip(value) == value


@pytest.mark.slow
@given(audit_forms())
def test_I11_generated_forms_roundtrip(form: AuditForm) -> None:
    back = roundtrip(form)
    assert back == form
    assert isinstance(back, AuditForm)
    assert missing_answers(back, {}) == missing_answers(form, {})


@given(grade_bands())
def test_I11_generated_bands_roundtrip(bands: GradeBands) -> None:
    back = roundtrip(bands)
    assert back == bands
    assert isinstance(back, GradeBands)
    assert [back.grade_for(s) for s in range(back.scale_min, back.scale_max + 1)] == [
        bands.grade_for(s) for s in range(bands.scale_min, bands.scale_max + 1)
    ]


def test_definitions_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bexley.GRADE_BANDS.scale_max = 11  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bexley.AUDIT_FORM.name = "x"  # type: ignore[misc]
    assert isinstance(buckinghamshire.JUDGEMENT_SCALE.as_mapping(), Mapping)
