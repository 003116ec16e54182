"""A real PostgreSQL server for the tests, started from the installed binaries.

``initdb`` and ``pg_ctl`` are looked up on PATH, then under ``/usr/lib/postgresql/*/bin``
(Debian's ``postgresql`` package). The cluster lives in a temporary folder and listens only
on a Unix socket there. initdb refuses to run as root, so as root the folder belongs to the
``postgres`` user (created if missing) and the binaries run through ``runuser``. Each test
gets its own schema (``search_path`` in its DSN), dropped afterwards.

Without server binaries the PostgreSQL tests skip with the reason, except in CI (``CI`` set),
where they fail: CI installs Debian's ``postgresql`` (see ``.ci/run``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

__all__ = ["PgServer", "find_pg_bin", "pg_missing"]


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def pg_missing(reason: str) -> None:
    """Skip outside CI; fail in CI, where the server must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}")
    pytest.skip(reason)


class PgServer:
    """A throwaway PostgreSQL cluster on a Unix socket in a temporary folder."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        # As root the server runs as ``postgres``, which must reach the folder: /tmp, not a
        # TMPDIR under root's home. Socket paths are short there too (libpq's 107 bytes).
        where = "/tmp" if self.as_root and os.path.isdir("/tmp") else None
        self.base = Path(tempfile.mkdtemp(prefix="qaflow-pg-", dir=where))
        self.data = self.base / "data"
        self.dsn = f"host={self.base} port=5432 user=qaflow dbname=postgres"
        self.options = ""

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self, *, durable: bool = False) -> None:
        """initdb and start; ``durable`` keeps fsync on (benchmarks), else off (tests)."""
        if self.as_root:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            shutil.chown(self.base, "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "qaflow", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        options = f"-k {self.base} -c listen_addresses='' -c max_connections=200"
        if not durable:  # the tests kill clients, never the server: its fsyncs buy nothing
            options += " -c fsync=off -c full_page_writes=off"
        self.options = options
        self.restart()

    def pg_ctl(self, *args: str) -> None:
        """``pg_ctl`` on this cluster (``stop -m fast`` takes the server down, files kept)."""
        self._run("pg_ctl", *args, "-D", str(self.data))

    def restart(self) -> None:
        """Start the stopped server again, as :meth:`start` configured it; wait until it
        accepts connections."""
        self._run(
            "pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.base / "log"),
            "-o", self.options,
        )  # fmt: skip

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.data))
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def fresh_dsn(self) -> tuple[str, str]:
        """A new empty schema and a DSN whose ``search_path`` is that schema."""
        import psycopg

        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        return f"{self.dsn} options='-c search_path={schema}'", schema

    def drop(self, schema: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]
