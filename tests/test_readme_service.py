"""The README's "Call qaflow from another system" curl lines run, as written, against a real
uvicorn serving the README's directory file, with keys made the way the README makes them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from qaflow import SQLiteStore
from qaflow.cli import main
from qaflow.directory import InMemoryDirectory
from qaflow.service import KeyStore, create_app
from service_support import live_server

ROOT = Path(__file__).resolve().parent.parent
TEXT = (ROOT / "README.md").read_text()
SECTION = TEXT.split("## Call qaflow from another system", 1)[1].split("\n## ", 1)[0]
CURL = re.findall(r"```sh\n(.*?)```", SECTION, re.S)
SETUP = re.findall(r"```bash\n(.*?)```", SECTION, re.S)


def test_the_readme_documents_keys_serve_and_curl() -> None:
    assert CURL and SETUP
    assert "qaflow keys add FIRO-1 --keys keys.json" in SETUP[0]
    assert "--directory examples/service-directory.json" in SETUP[0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_lines_run_against_a_live_server(tmp_path: Path) -> None:
    keys: dict[str, str] = {}
    for person in ("FIRO-1", "TM-1", "CMS-1"):  # as the README's setup block does
        result = CliRunner().invoke(main, ["keys", "add", person, "--keys", str(tmp_path / "k")])
        assert result.exit_code == 0, result.output
        keys[person] = result.output.strip().splitlines()[-1]
    store = SQLiteStore(tmp_path / "qaflow.db")
    directory = InMemoryDirectory.load_json(ROOT / "examples" / "service-directory.json")
    app = create_app(store, directory, keys=KeyStore.load(tmp_path / "k"))
    try:
        with live_server(app) as base:
            env = {"PATH": "/usr/bin:/bin", "QAFLOW": base, "KEY": keys["FIRO-1"]}
            env["TM_KEY"] = keys["TM-1"]
            env["OPS_KEY"] = keys["CMS-1"]
            for block in CURL:
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert done.returncode == 0, done.stdout + done.stderr
                assert re.search(r"\b412\n", done.stdout)  # the stale If-Match line
                assert '"newly_acknowledged":1' in done.stdout
        snapshot = store.load("ESC-1")
        assert snapshot.state == "stage_2" and snapshot.version == 3
        assert [e.actor.id for e in store.events("ESC-1")] == ["FIRO-1", "TM-1", "FIRO-1"]
    finally:
        store.close()
