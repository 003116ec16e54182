"""The QA lead's pages, served by a real uvicorn and rendered by Debian's headless chromium:
they render, every link on them leads to a page that renders, and a screenshot is kept;
and a person clicks and tabs through them (real mouse and key events over the DevTools
protocol, tests/cdp_support.py).

A browser without JavaScript authenticates with HTTP Basic (the key as password), which
headless chromium cannot answer; so chromium reads the pages from the same database served
in ``insecure_local`` mode (anonymous reads, loopback only), and the key-protected server
is checked with httpx and Basic credentials.
"""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cdp_support import Browser
from qaflow import Actor, Engine, ManualClock, SQLiteStore
from qaflow.policies import bexley
from qaflow.registry import shipped_specs
from qaflow.service import KeyStore, create_app
from service_support import directory, live_server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("QAFLOW_TEST_ARTIFACTS", ROOT / "test-artifacts"))
T0 = datetime(2025, 12, 1, 10, tzinfo=UTC)
FIRO = "escalation.bexley_firo"


def _chromium() -> str | None:
    for candidate in ("chromium", "/usr/bin/chromium"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _run(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = _chromium()
    assert binary is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [binary, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


class _Page(html.parser.HTMLParser):
    """The links, headings, labelled inputs and table captions of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.h1: list[str] = []
        self.captions = 0
        self.inputs: list[str] = []
        self.labels: list[str] = []
        self.lang: str | None = None
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        elif tag == "h1":
            self._in_h1 = True
            self.h1.append("")
        elif tag == "caption":
            self.captions += 1
        elif tag == "input":
            self.inputs.append(str(a.get("id")))
        elif tag == "label" and a.get("for"):
            self.labels.append(str(a["for"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1[-1] += data


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    clock = ManualClock(T0)
    store = SQLiteStore(tmp_path / "web.db")
    engine = Engine(store, shipped_specs(), clock=clock)
    reason = bexley.FIRO_LADDER.reasons[0]
    for n, to in enumerate(("stage_1", "stage_1", "stage_2", None), start=1):
        payload: dict[str, Any] = {"subject_id": f"CARER-{n}", "reason": reason}
        if to:
            payload["to"] = to
        if to == "stage_2":
            payload["people"] = {"head_of_service": "HS-1"}
        engine.start(FIRO, f"ESC-{n}", "raise", Actor("FIRO-1", "firo"), payload)
        clock.advance(timedelta(days=3))
    engine.fire("ESC-2", "accept", Actor("FIRO-1", "firo"))
    clock.advance(timedelta(days=10))  # ESC-1's stage 1 response is now overdue
    keys = KeyStore()
    # The QA lead's pages: one who sees every case (only they get the store-wide report).
    _, key = keys.add("CMS-1")
    app = create_app(store, directory(), keys=keys, clock=clock)
    reader = SQLiteStore(tmp_path / "web.db")
    local = create_app(reader, directory(), insecure_local=True, clock=clock)
    with live_server(app) as base, live_server(local) as open_base:
        yield base, key, open_base
    reader.close()
    store.close()


@pytest.mark.slow  # one chromium process per page
def test_pages_render_in_chromium_and_their_links_work(
    site: tuple[str, str, str], tmp_path: Path
) -> None:
    if _chromium() is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'); .ci/run installs it")
    base, key, authed = site
    # Without credentials a page is refused with a Basic challenge the browser can answer.
    refused = httpx.get(f"{base}/ui")
    assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]

    seen: dict[str, _Page] = {}
    todo = ["/ui"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        dumped = _run(tmp_path / "profile", "--dump-dom", authed + path)
        assert dumped.returncode == 0, dumped.stderr[-2000:]
        page = _Page()
        page.feed(dumped.stdout)
        assert page.lang == "en" and len(page.h1) == 1 and page.h1[0].strip(), path
        seen[path] = page
        for link in page.links:
            if link.startswith("#") or link.startswith("/ui#"):
                continue
            if link.startswith("/ui"):
                todo.append(link.replace("&amp;", "&"))
            else:  # JSON, report and OpenAPI links: the server answers them
                answer = httpx.get(base + link, auth=("qa", key))
                assert answer.status_code == 200, (path, link, answer.status_code)

    dashboard = seen["/ui"]
    assert "/ui/workflows/ESC-1" in dashboard.links and "/ui/workflows/ESC-2" not in dashboard.links
    assert dashboard.captions >= 3
    assert "/ui/workflows/ESC-1" in seen and "/ui/report" in seen
    quarter = "/ui/report?from=2025-10-01&to=2025-12-24"
    assert quarter in seen and any("format=html" in link for link in seen[quarter].links)
    report = seen["/ui/report"]
    assert set(report.inputs) == {"from", "to"} and set(report.labels) >= {"from", "to"}
    text = httpx.get(f"{base}/ui", auth=("qa", key)).text
    assert "ESC-1" in text and "(overdue)" in text and "team_manager" in text
    assert "head_of_service (HS-1)" in text  # the holder recorded for the stage
    assert "CARER-1" not in text  # ids of children and carers stay off the overview

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "service-dashboard.png"
    shot.unlink(missing_ok=True)
    taken = _run(
        tmp_path / "profile-png", "--window-size=1100,1400", f"--screenshot={shot}", authed + "/ui"
    )
    assert taken.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, taken.stderr


@pytest.mark.slow  # one chromium, driven over the DevTools protocol
def test_a_person_clicks_and_tabs_through_the_pages(
    site: tuple[str, str, str], tmp_path: Path
) -> None:
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (Debian package 'chromium'); .ci/run installs it")
    _, _, pages = site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = Browser(binary, tmp_path / "cdp-profile")
    try:
        browser.goto(pages + "/ui")
        assert browser.evaluate("document.querySelector('h1').textContent") == "Open escalations"
        # The keyboard reaches the skip link first, and it leads to the content.
        browser.press("Tab")
        assert browser.evaluate("document.activeElement.textContent") == "Skip to content"

        # Click the overdue escalation: its timeline, with the raise and its actor.
        browser.click('main a[href="/ui/workflows/ESC-1"]')
        assert browser.evaluate("location.pathname") == "/ui/workflows/ESC-1"
        assert browser.evaluate("document.querySelector('h1').textContent") == "Workflow ESC-1"
        timeline = browser.evaluate(
            "[...document.querySelectorAll('ol.timeline li')].map(li => li.textContent)"
        )
        assert len(timeline) == 1 and "raise" in timeline[0] and "FIRO-1" in timeline[0]
        browser.screenshot(ARTIFACTS / "service-workflow.png")

        # Back to the overview through the main navigation, then to the report form.
        browser.click('nav a[href="/ui"]')
        assert browser.evaluate("location.pathname") == "/ui"
        browser.click('nav a[href="/ui/report"]')
        assert browser.evaluate("document.querySelector('h1').textContent") == "QA report"
        # Choose the period, then submit with the keyboard: Tab from "to" (through its
        # day, month and year fields) reaches the button, Enter submits the form.
        browser.evaluate(
            "document.getElementById('from').value = '2025-10-01';"
            "document.getElementById('to').value = '2026-01-01';"
            "document.getElementById('to').focus()"
        )
        focused = []
        for _ in range(4):
            browser.press("Tab")
            focused.append(
                browser.evaluate("document.activeElement.id || document.activeElement.tagName")
            )
            if focused[-1] == "BUTTON":
                break
        assert focused[-1] == "BUTTON" and set(focused[:-1]) <= {"to"}, focused
        browser.press("Enter", loads=True)
        assert browser.evaluate("location.search") == "?from=2025-10-01&to=2026-01-01"
        captions = browser.evaluate(
            "[...document.querySelectorAll('caption')].map(c => c.textContent)"
        )
        assert "Activity, 2025-10-01 to 2026-01-01" in captions
        rows = browser.evaluate(
            "[...document.querySelectorAll('table')[1].querySelectorAll('tbody tr')]"
            ".map(r => r.textContent)"
        )
        assert any(FIRO in row for row in rows)
        shot = ARTIFACTS / "service-report.png"
        browser.screenshot(shot)
        assert shot.stat().st_size > 10_000

        # The full report with charts, one more click away.
        browser.click('a[href*="format=html"]')
        assert browser.evaluate("location.pathname") == "/report"
        assert browser.evaluate("document.querySelectorAll('svg, img, table').length") > 0
    finally:
        browser.close()
