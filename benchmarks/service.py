"""Commands per second through HTTP vs the same commands through the library, same store.

    python benchmarks/service.py           # 5 rounds of 120 FIRO escalations (600 commands)
    python benchmarks/service.py --quick   # 3 rounds of 30

Each escalation is five durable commands (raise, respond, escalate, respond, accept) on an
SQLite file with synchronous=FULL. The library side calls ``Engine.start``/``fire`` with a
directory, as the service does; the HTTP side sends the same commands with httpx (one
keep-alive connection, a bearer key) to ``qaflow serve`` running in its own process on a
loopback port, each round on a fresh database of its own. Rounds alternate library and
HTTP; the ratio printed is the median of the per-round ratios (HTTP rate / library rate).
Target: >= 0.5x. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from qaflow import Actor, Engine, SQLiteStore
from qaflow.directory import InMemoryDirectory
from qaflow.policies import bexley
from qaflow.registry import shipped_specs
from qaflow.service import KeyStore

ROOT = Path(__file__).resolve().parent.parent
FIRO = "escalation.bexley_firo"
PEOPLE = {
    "people": [
        {"id": "FIRO-1", "roles": ["firo"]},
        {"id": "TM-1", "roles": [], "team_id": "T-F"},
        {"id": "HS-1", "roles": ["head_of_service"]},
    ],
    "teams": [{"id": "T-F", "service_id": "SV-F", "manager_id": "TM-1"}],
    "services": [{"id": "SV-F", "head_of_service_id": "HS-1"}],
}
RAISE = {"subject_id": "CARER-1", "reason": bexley.FIRO_LADDER.reasons[0], "to": "stage_1"}
# (person, role, trigger, payload) after the raise: the whole escalation to resolution.
STEPS = (
    ("TM-1", "team_manager", "respond", {"response": "Seen."}),
    ("FIRO-1", "firo", "escalate", {}),
    ("HS-1", "head_of_service", "respond", {"response": "Agreed."}),
    ("FIRO-1", "firo", "accept", {}),
)
COMMANDS_PER_ESCALATION = 1 + len(STEPS)


def library_round(folder: Path, n: int, tag: str) -> float:
    store = SQLiteStore(folder / f"lib-{tag}.db")
    engine = Engine(store, shipped_specs(), directory=InMemoryDirectory.from_mapping(PEOPLE))
    started = time.perf_counter()
    for i in range(n):
        wid = f"ESC-{i}"
        engine.start(FIRO, wid, "raise", Actor("FIRO-1", "firo"), RAISE)
        for person, role, trigger, payload in STEPS:
            engine.fire(wid, trigger, Actor(person, role), payload)
    elapsed = time.perf_counter() - started
    store.close()
    return n * COMMANDS_PER_ESCALATION / elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_round(folder: Path, n: int, tag: str) -> float:
    directory = folder / "directory.json"
    directory.write_text(json.dumps(PEOPLE))
    keys = KeyStore(path=folder / "keys.json")
    issued = {p["id"]: keys.add(p["id"])[1] for p in PEOPLE["people"]}
    keys.save()
    port = _free_port()
    command = [sys.executable, "-m", "qaflow.cli", "serve", "--db", str(folder / f"http-{tag}.db")]
    command += ["--directory", str(directory), "--keys", str(keys.path), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(600):
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            auth: dict[str, dict[str, str]] = {
                p: {"Authorization": f"Bearer {k}"} for p, k in issued.items()
            }
            post: Callable[..., Any] = client.post
            started = time.perf_counter()
            for i in range(n):
                wid = f"ESC-{i}"
                body = {"machine": FIRO, "workflow_id": wid, "trigger": "raise", "payload": RAISE}
                answer = post("/workflows", json=body, headers=auth["FIRO-1"])
                assert answer.status_code == 201, answer.text
                for person, _role, trigger, payload in STEPS:
                    answer = post(
                        f"/workflows/{wid}/fire",
                        json={"trigger": trigger, "payload": payload},
                        headers=auth[person],
                    )
                    assert answer.status_code == 200, answer.text
            elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    return n * COMMANDS_PER_ESCALATION / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, n = (3, 30) if args.quick else (5, 120)
    lib_rates: list[float] = []
    http_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for r in range(rounds):
            lib_rates.append(library_round(folder, n, str(r)))
            http_rates.append(http_round(folder, n, str(r)))
    ratios = [h / lib for h, lib in zip(http_rates, lib_rates, strict=True)]
    ratio = statistics.median(ratios)
    print("== durable commands per second, FIRO escalations, SQLite synchronous=FULL")
    rows = (
        ("library (Engine.start/fire + directory)", statistics.median(lib_rates)),
        ("HTTP (qaflow serve, httpx keep-alive, bearer key)", statistics.median(http_rates)),
    )
    for label, rate in rows:
        print(f"  {label:<52} {rate:>10.0f}/s")
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"  {'per-round ratios':<52} {shown}")
    met = "met" if ratio >= 0.5 else "NOT met"
    print(
        f"  {'ratio HTTP / library (median of rounds)':<52} {ratio:>10.2f}x  target >= 0.5x: {met}"
    )


if __name__ == "__main__":
    main()
