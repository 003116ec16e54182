"""Commands per second through HTTP vs the same commands through the library, same store.

    python benchmarks/service.py                  # 400 random FIRO escalations per side
    python benchmarks/service.py --quick          # 80
    python benchmarks/service.py --client httpx   # the client side through httpx instead

The mix: ``n`` FIRO escalations, each taking one of three paths chosen at random (seeded):
to resolution through stage 2 (raise, respond, escalate, respond, accept), resolved at stage 1
(raise, respond, accept), or withdrawn (raise, withdraw). Their commands are interleaved in a
random order across the open workflows (each workflow's own commands stay in order), so
consecutive commands hit different workflows, as a busy council's would.

Both sides run every command durably on their own fresh SQLite file with synchronous=FULL.
The library side calls ``Engine.start``/``fire`` with a directory, as the service does; the
HTTP side sends the same commands to ``qaflow serve`` in its own process on a loopback port,
over one keep-alive connection with each caller's bearer key, and reads each JSON answer.
The two sides alternate in batches of ``--batch`` commands (the order swapped every pair), so
both see the same load on this shared machine; the ratio printed is HTTP rate / library rate
over the whole run, with the median and spread of the per-pair ratios beside it.
Target: >= 0.5x. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qaflow import Actor, Engine, SQLiteStore
from qaflow.directory import InMemoryDirectory
from qaflow.policies import bexley
from qaflow.registry import shipped_specs
from qaflow.service import KeyStore

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
# (person, role, trigger, payload) after the raise, for each path an escalation may take.
PATHS: tuple[tuple[tuple[str, str, str, dict[str, Any]], ...], ...] = (
    (
        ("TM-1", "team_manager", "respond", {"response": "Seen."}),
        ("FIRO-1", "firo", "escalate", {}),
        ("HS-1", "head_of_service", "respond", {"response": "Agreed."}),
        ("FIRO-1", "firo", "accept", {}),
    ),
    (
        ("TM-1", "team_manager", "respond", {"response": "Seen."}),
        ("FIRO-1", "firo", "accept", {}),
    ),
    (("FIRO-1", "firo", "withdraw", {}),),
)

# One command: (workflow id, person, role, trigger, payload); trigger "raise" starts it.
Command = tuple[str, str, str, str, dict[str, Any]]


def schedule(n: int, seed: int) -> list[Command]:
    """``n`` escalations on random paths, their commands interleaved at random."""
    rng = random.Random(seed)
    queues: list[list[Command]] = []
    for i in range(n):
        wid = f"ESC-{i:05d}"
        steps = [(wid, "FIRO-1", "firo", "raise", RAISE)]
        steps += [(wid, *step) for step in rng.choice(PATHS)]
        queues.append(steps)
    out: list[Command] = []
    while queues:
        index = rng.randrange(len(queues))
        out.append(queues[index].pop(0))
        if not queues[index]:
            queues[index] = queues[-1]
            queues.pop()
    return out


class LibrarySide:
    """The baseline: the engine in this process, its own SQLite file."""

    def __init__(self, path: Path) -> None:
        self.store = SQLiteStore(path)
        directory = InMemoryDirectory.from_mapping(PEOPLE)
        self.engine = Engine(self.store, shipped_specs(), directory=directory)

    def run(self, commands: Sequence[Command]) -> None:
        for wid, person, role, trigger, payload in commands:
            if trigger == "raise":
                self.engine.start(FIRO, wid, trigger, Actor(person, role), payload)
            else:
                self.engine.fire(wid, trigger, Actor(person, role), payload)

    def close(self) -> None:
        self.store.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpSide:
    """``qaflow serve`` in its own process; one keep-alive connection from this one."""

    def __init__(self, folder: Path, client: str) -> None:
        directory = folder / "directory.json"
        directory.write_text(json.dumps(PEOPLE))
        keys = KeyStore(path=folder / "keys.json")
        issued = {p["id"]: keys.add(p["id"])[1] for p in PEOPLE["people"]}
        keys.save()
        self.port = _free_port()
        command = [sys.executable, "-m", "qaflow.cli", "serve", "--db", str(folder / "http.db")]
        command += ["--directory", str(directory), "--keys", str(keys.path)]
        command += ["--port", str(self.port)]
        self.server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=dict(os.environ))
        self.headers = {
            p: {"Authorization": f"Bearer {k}", "Content-Type": "application/json"}
            for p, k in issued.items()
        }
        self._wait_ready()
        self.post = self._httpx_post(self.port) if client == "httpx" else self._stdlib_post()

    def _wait_ready(self) -> None:
        for _ in range(600):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def _stdlib_post(self) -> Callable[[str, bytes, dict[str, str]], tuple[int, bytes]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self._closers: list[Callable[[], None]] = [conn.close]

        def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            conn.request("POST", path, body, headers)
            answer = conn.getresponse()
            return answer.status, answer.read()

        return post

    def _httpx_post(self, port: int) -> Callable[[str, bytes, dict[str, str]], tuple[int, bytes]]:
        import httpx

        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self._closers = [client.close]

        def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            answer = client.post(path, content=body, headers=headers)
            return answer.status_code, answer.content

        return post

    def run(self, commands: Sequence[Command]) -> None:
        post = self.post
        for wid, person, _role, trigger, payload in commands:
            if trigger == "raise":
                body = {"machine": FIRO, "workflow_id": wid, "trigger": trigger, "payload": payload}
                status, raw = post("/workflows", json.dumps(body).encode(), self.headers[person])
                expected = 201
            else:
                body = {"trigger": trigger, "payload": payload}
                path = f"/workflows/{wid}/fire"
                status, raw = post(path, json.dumps(body).encode(), self.headers[person])
                expected = 200
            answer = json.loads(raw)
            assert status == expected, answer

    def close(self) -> None:
        for close in self._closers:
            close()
        self.server.terminate()
        self.server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--client", choices=("stdlib", "httpx"), default="stdlib")
    parser.add_argument("--batch", type=int, default=20, help="commands per timed batch")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    n = 80 if args.quick else 400
    commands = schedule(n, args.seed)
    lib_times: list[float] = []
    http_times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        library = LibrarySide(folder / "lib.db")
        server = HttpSide(folder, args.client)
        try:
            warm = schedule(5, args.seed + 1)  # other ids: warms both sides' caches
            library.run([(f"W{c[0]}", *c[1:]) for c in warm])
            server.run([(f"W{c[0]}", *c[1:]) for c in warm])
            for i, start in enumerate(range(0, len(commands), args.batch)):
                batch = commands[start : start + args.batch]
                sides = (library, server) if i % 2 == 0 else (server, library)
                for side in sides:
                    began = time.perf_counter()
                    side.run(batch)
                    elapsed = time.perf_counter() - began
                    (lib_times if side is library else http_times).append(elapsed)
        finally:
            server.close()
            library.close()
    count = len(commands)
    lib_rate, http_rate = count / sum(lib_times), count / sum(http_times)
    ratios = sorted(lib / http for lib, http in zip(lib_times, http_times, strict=True))
    ratio = http_rate / lib_rate
    client = "http.client" if args.client == "stdlib" else "httpx"
    print(f"== durable commands per second, {n} random FIRO escalations ({count} commands),")
    print(f"   SQLite synchronous=FULL, batches of {args.batch} alternating")
    rows = (
        ("library (Engine.start/fire + directory)", lib_rate),
        (f"HTTP (qaflow serve, {client} keep-alive, bearer key)", http_rate),
    )
    for label, rate in rows:
        print(f"  {label:<56} {rate:>10.0f}/s")
    quart = statistics.quantiles(ratios, n=4)
    print(
        f"  {'per-batch ratios: median (quartiles)':<56} {statistics.median(ratios):>10.2f}"
        f"  ({quart[0]:.2f}-{quart[2]:.2f})"
    )
    met = "met" if ratio >= 0.5 else "NOT met"
    print(f"  {'ratio HTTP / library (whole run)':<56} {ratio:>10.2f}x  target >= 0.5x: {met}")


if __name__ == "__main__":
    main()
