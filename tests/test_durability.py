"""Crash and concurrency across processes on a real SQLite file and a real PostgreSQL server
(principle 3, I12)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

import qaflow
from qaflow import Engine, ManualClock, open_store
from review_machine import review_spec

ROOT = Path(__file__).resolve().parent.parent
# The child processes import the qaflow this process imported (the source tree, or in CI's
# compiled leg the installed compiled wheel).
QAFLOW_HOME = str(Path(qaflow.__file__).resolve().parent.parent)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([QAFLOW_HOME, str(ROOT / "examples")])}

WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime, timedelta
    from review_machine import review_spec
    from qaflow import Actor, Engine, ManualClock, open_store
    clock = ManualClock(datetime(2025, 6, 2, 9, tzinfo=UTC))
    engine = Engine(open_store(sys.argv[1]), [review_spec()], clock=clock)
    worker, manager = Actor("P-1", "worker"), Actor("M-1", "manager")
    n = 0
    while True:
        n += 1
        wid = f"W{n}"
        engine.start("example.review", wid, "submit", worker, {"document_ref": "D"})
        print("ack", wid, 1, flush=True)
        for seq in range(2, 6):
            clock.advance(timedelta(minutes=1))
            engine.fire(wid, "comment", manager, {"text": "t"})
            print("ack", wid, seq, flush=True)
""")

RACER = textwrap.dedent("""
    import sys
    from review_machine import review_spec
    from qaflow import Actor, ConcurrencyError, Engine, open_store
    engine = Engine(open_store(sys.argv[1]), [review_spec()])
    version = engine.get("R").version
    at = engine.get("R").updated_at
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        engine.fire("R", "comment", Actor("M-1", "manager"), {"text": sys.argv[2]},
                    at=at, expected_version=version)
        print("won", flush=True)
    except ConcurrencyError:
        print("lost", flush=True)
""")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the processes meet: a SQLite file, or a schema on the PostgreSQL server."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_dsn"))
    return f"sqlite:///{tmp_path / 'shared.db'}"


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_event(url: str) -> None:
    path = url
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    acked: list[tuple[str, int]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        _, wid, seq = line.split()
        acked.append((wid, int(seq)))
        if len(acked) >= 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = open_store(path)
    engine = Engine(store, [review_spec()], clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    stored = {(e.workflow_id, e.seq) for w in store.workflow_ids() for e in store.events(w)}
    assert set(acked) <= stored, "an acknowledged event was lost"
    assert engine.verify() == len(list(store.workflow_ids()))
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_I12_two_processes_at_the_same_version_exactly_one_wins(url: str, round_: int) -> None:
    path = url
    store = open_store(path)
    engine = Engine(store, [review_spec()])
    from qaflow import Actor

    engine.start(
        "example.review",
        "R",
        "submit",
        Actor("P-1", "worker"),
        {"document_ref": "D"},
        at=datetime(2025, 6, 2, 9, tzinfo=UTC),
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(path), name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for name in ("a", "b")
    ]
    for racer in racers:
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    for racer in racers:
        assert racer.stdin is not None
        racer.stdin.write("go\n")
        racer.stdin.flush()
    results = sorted(r.communicate(timeout=60)[0].strip() for r in racers)
    assert results == ["lost", "won"]
    assert engine.get("R").version == 2
    assert [e.seq for e in engine.history("R")] == [1, 2]
    engine.verify()
    store.close()
