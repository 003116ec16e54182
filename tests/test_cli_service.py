"""``qaflow keys`` and ``qaflow serve``: keys stored hashed, a server that refuses to run
open to the network, and the real command serving on loopback."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from qaflow.cli import main
from qaflow.service import KeyStore
from service_support import DIRECTORY


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_keys_are_stored_hashed_and_can_be_revoked(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    code, out = run("keys", "add", "FIRO-1", "--keys", str(path))
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    assert key.startswith("qfk_")
    text = path.read_text()
    assert key not in text and hashlib.sha256(key.encode()).hexdigest() in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    store = KeyStore.load(path)
    entry = store.person_for(key)
    assert entry.person_id == "FIRO-1"
    code, out = run("keys", "list", "--keys", str(path))
    assert code == 0 and entry.id in out and "live" in out and key not in out
    code, out = run("keys", "revoke", entry.id, "--keys", str(path))
    assert code == 0
    code, out = run("keys", "list", "--keys", str(path))
    assert "revoked" in out
    code, out = run("keys", "add", "not an id!", "--keys", str(path))
    assert code == 1 and out.startswith("Error: ValidationError: 'person_id'")


def test_serve_refuses_to_run_open(tmp_path: Path) -> None:
    directory = tmp_path / "directory.json"
    directory.write_text(json.dumps(DIRECTORY))
    db = str(tmp_path / "s.db")
    code, out = run("serve", "--db", db, "--directory", str(directory))
    assert code == 1 and "'--keys' must be a key store file (or --insecure-local)" in out
    code, out = run(
        "serve", "--db", db, "--directory", str(directory), "--insecure-local", "--host", "0.0.0.0"
    )
    assert code == 1 and "'--host' must be a loopback address" in out
    code, out = run("serve", "--db", db, "--directory", str(directory), "--keys", "nope.json")
    assert code == 1 and "an existing key store file" in out
    keys = tmp_path / "keys.json"
    assert run("keys", "add", "FIRO-1", "--keys", str(keys))[0] == 0
    access = tmp_path / "access.json"
    for text, expected in (
        ("{", "a JSON access file"),
        ('{"grants": {"NOBODY": ["ESC-1"]}}', "'grants' must be people in the directory"),
        ('{"see_all_roles": "qa_lead"}', "'see_all_roles' must be a list of roles"),
    ):
        access.write_text(text)
        code, out = run(
            "serve", "--db", db, "--directory", str(directory), "--keys", str(keys),
            "--access", str(access),
        )  # fmt: skip
        assert code == 1 and expected in out, out
    assert not Path(db).exists()  # nothing written on a refused command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow  # a real `qaflow serve` process
def test_qaflow_serve_answers_on_loopback(tmp_path: Path) -> None:
    directory = tmp_path / "directory.json"
    directory.write_text(json.dumps(DIRECTORY))
    keys = tmp_path / "keys.json"
    code, out = run("keys", "add", "FIRO-1", "--keys", str(keys))
    assert code == 0, out
    key = out.strip().splitlines()[-1]
    port = _free_port()
    command = [sys.executable, "-m", "qaflow.cli", "serve", "--db", str(tmp_path / "s.db")]
    command += ["--directory", str(directory), "--keys", str(keys), "--port", str(port)]
    proc = subprocess.Popen(command, env=dict(os.environ), stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # the server's start-up is real time: bounded polling
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert health.json() == {"status": "ok"}
        assert httpx.get(f"{base}/workflows").status_code == 401
        auth = {"Authorization": f"Bearer {key}"}
        listed = httpx.get(f"{base}/workflows", headers=auth)
        assert listed.status_code == 200 and listed.json() == {"items": [], "next_after": None}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
