"""The QA report: its figures against counts taken straight from the store, its periods, its
independence from the simulation, its three renderings, and the HTML page in a real browser.

The direct counts below read the events (not the workflow data the report reads where it
can), so a figure only passes when two different readings of the store agree.
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import statistics
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audit_support import AUDITOR, BUSINESS, START, Harness
from qaflow import Actor, MemoryStore, SQLiteStore
from qaflow.calendar import default_calendar
from qaflow.machines import audit as A
from qaflow.policies import bexley, buckinghamshire, shipped_audit_procedures
from qaflow.policies.forms import Grade
from qaflow.programme import generate_council, run_programme
from qaflow.records import SYSTEM, Event
from qaflow.registry import shipped_report_policies, shipped_specs
from qaflow.report import (
    CHART_IDS,
    QAReport,
    build_report,
    from_json,
    to_html,
    to_json,
    to_markdown,
)

Q_START, Q_END = date(2026, 1, 1), date(2026, 4, 1)
KNOWN = shipped_report_policies()
POLICIES = {p.audit.name: p.audit for p in shipped_audit_procedures()}


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    """A quarter of the Bexley programme with plenty of escalations, and a month of the
    Buckinghamshire one in the same store (two councils, two id prefixes)."""
    memory = MemoryStore()
    council = generate_council(21)
    run_programme(
        council,
        bexley.BEXLEY_AUDIT,
        months=3,
        start=Q_START,
        seed=21,
        store=memory,
        escalation_rate=0.08,
        slow_auditor_share=0.4,
        task_on_time_rate=0.6,
    )
    run_programme(
        council,
        buckinghamshire.BUCKINGHAMSHIRE_AUDIT,
        months=1,
        start=Q_START,
        seed=4,
        store=memory,
    )
    return memory


@pytest.fixture(scope="module")
def report(store: MemoryStore) -> QAReport:
    return build_report(store, policies=KNOWN, start=Q_START, end=Q_END)


# --- direct counts from the events ---------------------------------------------------------


def events_of(store: MemoryStore) -> dict[str, list[Event]]:
    return {w: store.events(w) for w in store.workflow_ids()}


def kind(machine: str) -> str:
    return machine.split(".")[0]


def direct(store: MemoryStore, start: datetime, end: datetime) -> dict[str, Any]:
    """The report's figures counted independently from the event log."""
    snaps = {s.workflow_id: s for s in store.snapshots()}
    log = events_of(store)

    def inside(e: Event) -> bool:
        return start <= e.at < end

    def with_trigger(machine: str, trigger: str) -> list[str]:
        return [
            w
            for w, events in log.items()
            if kind(snaps[w].machine) == machine
            and any(e.trigger == trigger and inside(e) for e in events)
        ]

    audits = [w for w in log if snaps[w].machine == "audit"]
    out: dict[str, Any] = {
        "audits_allocated": sum(1 for w in audits if inside(log[w][0])),
        "audits_graded": len(with_trigger("audit", "grade")),
        "audits_completed": len(with_trigger("audit", "complete")),
        "audits_cancelled": len(with_trigger("audit", "cancel")),
        "audits_followed_up": len(with_trigger("audit", "follow_up")),
        "moderations_sampled": len(with_trigger("moderation", "sample")),
        "moderations_finalised": len(with_trigger("moderation", "finalise")),
        "escalations_raised": len(with_trigger("escalation", "raise")),
    }
    # Grades: the auditor's from the grade event's answer, the current from the last
    # moderated event before the end.
    auditor: Counter[str] = Counter()
    current: Counter[str] = Counter()
    q6: list[int] = []
    for w in with_trigger("audit", "grade"):
        policy = POLICIES[snaps[w].policy]
        graded = next(e for e in log[w] if e.trigger == "grade")
        first = policy.form.grade(graded.payload["answer"]).name
        moderated = [e for e in log[w] if e.trigger == "moderated" and e.at < end]
        auditor[first] += 1
        current[moderated[-1].payload["grade"] if moderated else first] += 1
        answer = graded.payload["answers"].get("Q6")
        if answer is not None:
            q6.append(answer["score"])
    out["auditor_grades"] = dict(auditor)
    out["grades"] = dict(current)
    out["q6_mean"] = statistics.mean(q6) if q6 else None
    finalised = with_trigger("moderation", "finalise")
    out["moderations_agreed"] = sum(
        1 for w in finalised if any(e.trigger == "agree" for e in log[w])
    )
    # Escalations by ladder, resolved by the end, time to resolution from the events.
    raised = with_trigger("escalation", "raise")
    out["raised_by_ladder"] = dict(Counter(snaps[w].data["ladder"] for w in raised))
    out["resolved_by_ladder"] = dict(
        Counter(
            snaps[w].data["ladder"]
            for w in raised
            if any(e.dest == "resolved" and e.at < end for e in log[w])
        )
    )
    calendar = default_calendar()
    days = []
    for w, events in log.items():
        if kind(snaps[w].machine) != "escalation":
            continue
        done = [e for e in events if e.dest == "resolved" and inside(e)]
        if done:
            days.append(calendar.working_days_between(events[0].at, done[0].at))
    out["resolved_days"] = sorted(days)
    # Breaches: system events naming a deadline.
    out["breaches"] = dict(
        Counter(
            (snaps[w].machine, e.payload["deadline"])
            for w, events in log.items()
            for e in events
            if inside(e) and e.actor == SYSTEM and "deadline_id" in e.payload
        )
    )
    # Follow-ups of audits completed in the period (BX-AUD-09).
    on_time = late = 0
    for w in with_trigger("audit", "complete"):
        if POLICIES[snaps[w].policy].follow_up is None:
            continue
        done = [e for e in log[w] if e.trigger == "follow_up" and e.at < end]
        missed = [
            e
            for e in log[w]
            if e.trigger == "deadline_missed" and e.payload["deadline"] == "follow_up"
        ]
        if done:
            if missed and missed[0].at <= done[0].at:
                late += 1
            else:
                on_time += 1
    out["follow_ups"] = (on_time, late)
    out["urgent_tasks"] = sum(
        1
        for t in store.tasks()
        if t.due_at is not None
        and t.due_at - t.created_at <= timedelta(hours=24)
        and start <= t.created_at < end
    )
    # Family feedback F1 from every record_feedback set, over audits completed (BX-AUD-07).
    f1 = [
        e.payload["answers"]["F1"]["score"]
        for w in with_trigger("audit", "complete")
        for e in log[w]
        if e.trigger == "record_feedback" and "F1" in e.payload.get("answers", {})
    ]
    out["f1"] = (len(f1), statistics.mean(f1) if f1 else None)
    # Distance travelled on SA1: the worker is the actor of the submission.
    by_worker: dict[str, list[tuple[datetime, int]]] = {}
    for w in with_trigger("audit", "submit_self_assessment"):
        e = next(e for e in log[w] if e.trigger == "submit_self_assessment")
        by_worker.setdefault(e.actor.id, []).append((e.at, e.payload["answers"]["SA1"]["score"]))
    changes = [sorted(v)[-1][1] - sorted(v)[0][1] for v in by_worker.values() if len(v) >= 2]
    out["sa1"] = (len(changes), statistics.mean(changes) if changes else None)
    return out


def check_against_direct(report: QAReport, store: MemoryStore) -> None:
    d = direct(store, report.start, report.end)
    a = report.activity
    for name in (
        "audits_allocated",
        "audits_graded",
        "audits_completed",
        "audits_cancelled",
        "audits_followed_up",
        "moderations_sampled",
        "moderations_finalised",
        "escalations_raised",
    ):
        assert getattr(a, name) == d[name], name
    assert {g.grade: g.count for g in report.grades if g.count} == d["grades"]
    assert {g.grade: g.count for g in report.auditor_grades if g.count} == d["auditor_grades"]
    assert sum(g.count for g in report.grades) == a.audits_graded
    q6 = next((q for q in report.practice_areas if q.question_id == "Q6"), None)
    assert (q6.mean if q6 else None) == pytest.approx(d["q6_mean"])
    assert report.moderation.finalised == a.moderations_finalised
    assert report.moderation.agreed == d["moderations_agreed"]
    assert {s.ladder: s.raised for s in report.escalations} == d["raised_by_ladder"]
    assert {s.ladder: s.resolved for s in report.escalations if s.resolved} == d[
        "resolved_by_ladder"
    ]
    assert report.resolution.count == len(d["resolved_days"])
    if d["resolved_days"]:
        assert report.resolution.median == statistics.median(d["resolved_days"])
        assert sum(b.count for b in report.resolution.histogram) == len(d["resolved_days"])
    assert {(b.machine, b.deadline): b.count for b in report.breaches} == d["breaches"]
    assert (report.follow_ups.on_time, report.follow_ups.late) == d["follow_ups"]
    assert report.urgent_tasks.total == d["urgent_tasks"]
    f1 = next((s for s in report.family_feedback if s.question_id == "F1"), None)
    assert f1 is not None
    assert f1.responses == d["f1"][0]
    assert f1.mean == pytest.approx(d["f1"][1])
    sa1 = next((x for x in report.distance_travelled if x.question_id == "SA1"), None)
    assert (sa1.practitioners if sa1 else 0) == d["sa1"][0]
    if sa1 is not None:
        assert sa1.mean_change == pytest.approx(d["sa1"][1])


# --- figures ---------------------------------------------------------------------------------


def test_the_quarters_figures_equal_direct_counts(report: QAReport, store: MemoryStore) -> None:
    check_against_direct(report, store)
    a = report.activity
    assert a.audits_allocated > 0 and a.audits_completed > 0 and a.escalations_raised > 0
    assert report.policies == ("bexley", "buckinghamshire")
    assert report.working_days == 63  # Q1 2026: 90 days, 26 weekend days, New Year's Day
    assert report.resolution.count > 0 and report.moderation.finalised > 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 2, 1), date(2026, 3, 1)),
        (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 3, 10, 9, 30, tzinfo=UTC)),
        (date(2026, 3, 1), date(2026, 6, 1)),
    ],
)
def test_any_period_is_counted_as_of_its_end(
    store: MemoryStore, start: date | datetime, end: date | datetime
) -> None:
    check_against_direct(build_report(store, policies=KNOWN, start=start, end=end), store)


def test_one_councils_report(store: MemoryStore) -> None:
    bx = build_report(store, policies=KNOWN, start=Q_START, end=Q_END, policy="buckinghamshire")
    assert bx.policies == ("bexley", "buckinghamshire")  # escalations pin the Bexley policy
    audits = [s for s in store.snapshots("audit") if s.policy == "buckinghamshire"]
    assert bx.activity.audits_allocated == len(audits)
    assert all(q.kind == "judgement" for q in bx.practice_areas)
    assert bx.follow_ups.total == 0  # BK sets no follow-up
    assert not bx.distance_travelled and not any(s.responses for s in bx.family_feedback)


def test_overdue_items_at_the_end_of_a_period(store: MemoryStore) -> None:
    """A period ending before the work is done: what was due and not done is overdue."""
    end = datetime(2026, 1, 20, 12, tzinfo=UTC)
    report = build_report(store, policies=KNOWN, start=Q_START, end=end)
    for item in report.overdue_follow_ups + report.overdue_tasks:
        assert item.due_at is not None and item.due_at < end
        assert item.working_days_overdue is not None and item.working_days_overdue >= 0
    late_tasks = [
        t
        for t in store.tasks()
        if t.due_at is not None
        and t.due_at - t.created_at <= timedelta(hours=24)
        and t.created_at < end
        and t.due_at < end
    ]
    assert report.urgent_tasks.total - report.urgent_tasks.pending == len(late_tasks)
    # Deadlines still open and past due (tick not yet run) are listed.
    later = datetime(2026, 6, 1, tzinfo=UTC)
    open_due = store.due_deadlines(later)
    listed = build_report(store, policies=KNOWN, start=Q_START, end=later).overdue_deadlines
    assert sorted(i.workflow_id for i in listed) == sorted(d.workflow_id for d in open_due)
    assert listed, "the store holds deadlines the run's last tick had not reached"


def test_an_empty_store_or_period_reports_zeros_and_says_what_it_cannot_compute() -> None:
    report = build_report(MemoryStore(), policies=KNOWN, start=Q_START, end=Q_END)
    assert report.activity.audits_allocated == report.workflows_read == 0
    assert all(g.count == 0 for g in report.grades)
    assert report.moderation.agreement_rate is None and report.resolution.median is None
    assert report.distance_travelled == ()
    assert any("Distance travelled is not computable" in n for n in report.notes)
    page = to_html(report, policies=KNOWN)
    for chart in CHART_IDS:
        assert f'id="{chart}"' in page
    assert "No data in this period" in page


def test_a_store_not_written_by_the_programme() -> None:
    """The report reads any store: here audits driven by hand through the test harness."""
    h = Harness()
    h.drive("bexley", "AU-1", A.FOLLOWED_UP, grade=Grade.GOOD)
    h.drive("bexley", "AU-2", A.COMPLETED, grade=Grade.INADEQUATE, feedback="reason")
    h.drive("bexley", "AU-3", A.GRADED, grade=Grade.REQUIRES_IMPROVEMENT)
    h.drive("buckinghamshire", "AU-4", A.COMPLETED, grade=Grade.OUTSTANDING)
    h.start("bexley", "AU-5")
    h.fire("AU-5", "cancel", BUSINESS, {"reason": "case closed"})
    ladder = bexley.CP_CHAIR_LADDER
    spec = next(s for s in shipped_specs() if s.name == f"escalation.{ladder.name}")
    chair = Actor("CH-9", "cp_chair")
    h.engine.start(spec, "ESC-1", "raise", chair, {"subject_id": "C-9", "reason": "plan_drift"})
    h.fire("ESC-1", "escalate", chair, {})
    h.fire("ESC-1", "accept", chair, {})
    report = build_report(
        h.store, policies=KNOWN, start=START.date(), end=START.date() + timedelta(days=7)
    )
    a = report.activity
    assert (a.audits_allocated, a.audits_graded, a.audits_completed) == (5, 4, 3)
    assert (a.audits_cancelled, a.audits_followed_up, a.audits_open_at_end) == (1, 1, 1)
    grades = {g.grade: g.count for g in report.grades}
    assert grades == {"OUTSTANDING": 1, "GOOD": 1, "REQUIRES_IMPROVEMENT": 1, "INADEQUATE": 1}
    assert report.feedback_obtained == 1 and report.feedback_not_obtained == 1
    assert report.follow_ups.on_time == 1 and report.follow_ups.pending == 1
    assert report.urgent_tasks.total == 2  # BX-AUD-12 for AU-2
    (cp,) = report.escalations
    assert (cp.raised, cp.resolved) == (1, 1)
    assert [(s.state, s.reached) for s in cp.stages][:3] == [
        ("informal", 1),
        ("stage_1", 1),
        ("stage_2", 0),
    ]
    assert report.resolution.count == 1 and report.resolution.median == 0
    clauses = {c.clause: c.count for c in report.notifications}
    assert clauses["BX-AUD-12"] == 6
    for rendering in (
        to_markdown(report, policies=KNOWN),
        to_html(report, policies=KNOWN),
        to_json(report),
    ):
        for text in ("case closed", "no reply", "some text", "share the plan"):
            assert text not in rendering  # payload free text never reaches the report
    assert AUDITOR.id not in to_json(report)  # people are not listed unless overdue owners


def test_the_report_refuses_a_bad_period(store: MemoryStore) -> None:
    from qaflow import ValidationError

    with pytest.raises(ValidationError):
        build_report(store, policies=KNOWN, start=Q_END, end=Q_START)
    with pytest.raises(ValidationError):
        build_report(store, policies=KNOWN, start=datetime(2026, 1, 1), end=Q_END)


def test_the_report_works_on_sqlite_too(tmp_path: Path) -> None:
    council = generate_council(5, teams=4, practitioners_per_team=4)
    memory = MemoryStore()
    run_programme(council, months=2, start=Q_START, seed=8, store=memory)
    with SQLiteStore(tmp_path / "r.db", synchronous="NORMAL") as sqlite:
        run_programme(council, months=2, start=Q_START, seed=8, store=sqlite)
        from_sqlite = build_report(sqlite, policies=KNOWN, start=Q_START, end=date(2026, 3, 1))
    assert from_sqlite == build_report(memory, policies=KNOWN, start=Q_START, end=date(2026, 3, 1))
    assert from_sqlite.urgent_tasks.timing_known


# --- renderings ------------------------------------------------------------------------------


def test_json_round_trips_and_holds_only_ids(report: QAReport) -> None:
    """I11 for the report record; no free text from any payload reaches a rendering."""
    text = to_json(report)
    assert from_json(text) == report
    data = json.loads(text)
    assert data["activity"]["audits_allocated"] == report.activity.audits_allocated
    for rendering in (
        text,
        to_markdown(report, policies=KNOWN),
        to_html(report, policies=KNOWN),
    ):
        assert "simulated" not in rendering  # the programme's only free text


def test_markdown_has_every_section(report: QAReport) -> None:
    md = to_markdown(report, policies=KNOWN)
    for heading in (
        "## How much did we do?",
        "## How well did we do it?",
        "### Practice areas",
        "### Moderation",
        "### Family feedback",
        "## Is anyone better off?",
        "## Escalations",
        "### Time to resolution",
        "## Breaches",
        "## Overdue at the end of the period",
    ):
        assert heading in md


def test_html_is_self_contained_with_every_chart(report: QAReport) -> None:
    page = to_html(report, policies=KNOWN)
    assert not re.search(r"https?:", page)
    assert "<script" not in page.lower() and "@import" not in page and "url(" not in page
    assert "<link" not in page.lower() and "<img" not in page.lower()
    for chart in CHART_IDS:
        svg = re.search(rf'<svg id="{chart}" class="qa-chart".*?</svg>', page, re.S)
        assert svg is not None, chart
        assert '<rect class="bar"' in svg.group(0) and "<path" in svg.group(0), chart


# --- in a browser ----------------------------------------------------------------------------


def chromium() -> str | None:
    for candidate in ("chromium", "chromium-browser", "/usr/bin/chromium"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [binary, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


class _Charts(html.parser.HTMLParser):
    """Collects, for each svg in the rendered DOM, the tags drawn inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: dict[str, Counter[str]] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "svg":
            self._open.append(dict(attrs).get("id") or "")
            self.shapes.setdefault(self._open[-1], Counter())
        elif self._open:
            self.shapes[self._open[-1]][tag] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._open:
            self._open.pop()


def png_pixels(path: Path) -> np.ndarray:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) to an array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bpp
    rows = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        start = y * (stride + 1)
        kind_ = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1).astype(np.int64)
        if kind_ == 1:
            line = np.cumsum(line.reshape(width, bpp), axis=0).reshape(stride) % 256
        elif kind_ == 2:
            line = (line + prev) % 256
        elif kind_ in (3, 4):
            out = [0] * stride
            cur, up = line.tolist(), prev.tolist()
            for i in range(stride):
                a = out[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind_ == 3:
                    out[i] = (cur[i] + (a + b) // 2) & 255
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                    out[i] = (cur[i] + pred) & 255
            line = np.array(out, dtype=np.int64)
        rows[y] = line
        prev = line
    return rows.reshape(height, width, bpp)[:, :, :3]


def _svg_elements(page: str) -> Iterator[str]:
    yield from re.findall(r'<svg id="([^"]+)"', page)


@pytest.mark.slow
def test_the_html_report_renders_its_charts_in_headless_chromium(
    report: QAReport, tmp_path: Path
) -> None:
    binary = chromium()
    if binary is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'); cannot render")
    page = tmp_path / "qa-report.html"
    page.write_text(to_html(report, policies=KNOWN), encoding="utf-8")
    url = page.resolve().as_uri()
    dumped = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    charts = _Charts()
    charts.feed(dumped.stdout)
    for chart in CHART_IDS:
        shapes = charts.shapes.get(chart)
        assert shapes is not None, f"{chart} is not in the rendered DOM"
        assert shapes["rect"] >= 2 and shapes["path"] >= 1, (chart, shapes)
    assert set(_svg_elements(dumped.stdout)) >= set(CHART_IDS)

    shot = tmp_path / "report.png"
    taken = run_chromium(
        binary, tmp_path / "profile-png", "--window-size=1000,2200", f"--screenshot={shot}", url
    )
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    pixels = png_pixels(shot)
    assert pixels.shape[:2] == (2200, 1000)
    ink = np.any(pixels < 235, axis=2).mean()
    assert ink > 0.02, f"the screenshot is nearly blank ({ink:.1%} non-white)"
    # The bars are drawn: pixels of the bar and grade colours are on the page.
    bar = np.all(np.abs(pixels.astype(int) - (63, 111, 181)) < 12, axis=2).sum()
    good = np.all(np.abs(pixels.astype(int) - (21, 101, 192)) < 12, axis=2).sum()
    assert bar > 500 and good > 200, (bar, good)


def _whole_histories(store: Any) -> Any:
    """The same store, offering only what the report read before period reads (issue 14)."""

    class WholeHistories(type(store)):  # type: ignore[misc]
        period_workflows = quiet_workflows = tasks_created = notifications_created = None
        period_snapshots = None

    copy = object.__new__(WholeHistories)
    copy.__dict__.update(store.__dict__)
    return copy


PERIODS = [
    (Q_START, Q_END),
    (date(2026, 2, 1), date(2026, 3, 1)),
    (date(2026, 3, 1), date(2026, 6, 1)),  # January's finished work is quiet here
    (date(2026, 3, 20), date(2026, 3, 27)),
    (date(2026, 9, 1), date(2026, 10, 1)),  # everything is quiet
]


@pytest.mark.parametrize(("start", "end"), PERIODS)
def test_period_reads_give_the_whole_history_report(
    store: MemoryStore, start: date, end: date
) -> None:
    """Reading only the period's workflows (one query per table) changes no figure."""
    whole = build_report(_whole_histories(store), policies=KNOWN, start=start, end=end)
    assert build_report(store, policies=KNOWN, start=start, end=end) == whole
    by_policy = build_report(store, policies=KNOWN, start=start, end=end, policy="buckinghamshire")
    assert by_policy == build_report(
        _whole_histories(store),
        policies=KNOWN,
        start=start,
        end=end,
        policy="buckinghamshire",
    )


def test_period_reads_on_sqlite_give_the_whole_history_report(tmp_path: Path) -> None:
    council = generate_council(6, teams=4, practitioners_per_team=4)
    with SQLiteStore(tmp_path / "p.db", synchronous="NORMAL") as sqlite:
        run_programme(council, months=3, start=Q_START, seed=9, store=sqlite, escalation_rate=0.1)
        for start, end in PERIODS:
            report = build_report(sqlite, policies=KNOWN, start=start, end=end)
            assert report == build_report(
                _whole_histories(sqlite), policies=KNOWN, start=start, end=end
            )
            assert report.workflows_read > 0


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_quiet_unfinished_audit_is_open_at_the_end(kind: str, tmp_path: Path) -> None:
    """An audit with no event in the period, never completed, still counts as open."""
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "q.db")
    harness = Harness(store)
    harness.start("bexley", "AUD-1")
    harness.start("bexley", "AUD-2")
    harness.fire("AUD-2", "cancel", BUSINESS, {"reason": "left the service"})
    later = START + timedelta(days=200)
    report = build_report(store, policies=KNOWN, start=later, end=later + timedelta(days=30))
    assert report == build_report(
        _whole_histories(store), policies=KNOWN, start=later, end=later + timedelta(days=30)
    )
    assert report.activity.audits_open_at_end == 1
    assert report.workflows_read == 2 and report.policies == ("bexley",)


def test_a_quiet_audits_state_says_whether_it_ended_or_the_report_reads_its_events() -> None:
    """The period path counts quiet audits by state only where the machine makes that exact."""
    from qaflow.policies import shipped_audit_procedures
    from qaflow.report._read import audit_ended as _audit_ended
    from qaflow.report._read import audit_phases as _audit_phases

    for policy in (procedure.audit for procedure in shipped_audit_procedures()):
        before, after = _audit_phases(policy)
        assert before and after and not before & after
        assert {"completed", "cancelled"} <= after and "allocated" in before
        phases: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        assert _audit_ended(policy, "cancelled", phases) is True
        assert _audit_ended(policy, "allocated", phases) is False
        assert _audit_ended(policy, "no_such_state", phases) is None
    assert _audit_ended(None, "completed", {}) is None


def test_each_trend_month_equals_a_report_of_that_month_alone(store: MemoryStore) -> None:
    """The trend reads its span once and counts each month as of its end: the same figures
    as a report built for that month alone (audits, grades, follow-ups, escalations)."""
    report = build_report(store, policies=KNOWN, start=Q_START, end=Q_END, trend_months=4)
    assert [m.month for m in report.trends] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    assert report.trends[0].audits_completed == 0
    for month in report.trends:
        alone = build_report(store, policies=KNOWN, start=month.start, end=month.end)
        good = sum(g.count for g in alone.grades if g.grade in ("OUTSTANDING", "GOOD"))
        f = alone.follow_ups
        assert (
            month.audits_completed,
            month.audits_graded,
            month.good_or_better,
            month.follow_ups_due,
            month.follow_ups_on_time,
            month.escalations_raised,
            month.escalations_resolved,
            month.breaches,
        ) == (
            alone.activity.audits_completed,
            alone.activity.audits_graded,
            good,
            f.on_time + f.late + f.overdue,
            f.on_time,
            alone.escalations_raised,
            alone.resolution.count,
            alone.breaches_total,
        ), month.month
    assert sum(m.escalations_raised for m in report.trends) == report.escalations_raised > 0
