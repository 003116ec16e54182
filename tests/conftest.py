"""Shared fixtures and the hypothesis profiles: a quick default and a deeper ``ci``."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from pg_support import PgServer, find_pg_bin, pg_missing  # noqa: E402  (after the path set-up)

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=250,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _started_server() -> PgServer:
    """A new PostgreSQL server, started (skips outside CI without binaries, fails in CI)."""
    bindir = find_pg_bin()
    if bindir is None:
        pg_missing("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib")
    assert bindir is not None
    server = PgServer(bindir)
    server.start()
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the session."""
    server = _started_server()
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> Iterator[str]:
    """A DSN to an empty schema of the session's server, dropped after the test."""
    dsn, schema = pg_server.fresh_dsn()
    yield dsn
    pg_server.drop(schema)


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A PostgreSQL server of the test's own, which it may stop and start again (the
    session's shared one must stay up); removed after the test."""
    server = _started_server()
    try:
        yield server
    finally:
        try:
            server.stop()
        except RuntimeError:  # a failed test left it stopped (or stopping): only tidy up
            shutil.rmtree(server.base, ignore_errors=True)
