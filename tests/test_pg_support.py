"""The PostgreSQL test server: found where Debian installs it; skipped locally, failed in CI."""

from __future__ import annotations

import glob

import pytest

from pg_support import find_pg_bin, pg_missing


def test_without_server_binaries_tests_skip_locally_and_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no binaries"):
        pg_missing("no binaries")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run in CI: no binaries"):
        pg_missing("no binaries")


def test_binaries_are_found_off_path_where_debian_puts_them(
    monkeypatch: pytest.MonkeyPatch, pg_server: object
) -> None:
    """Debian's postgresql package puts initdb in /usr/lib/postgresql/N/bin, not on PATH."""
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("not a Debian-style PostgreSQL installation")
    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_pg_bin()
    assert found is not None and (found / "initdb").exists() and (found / "pg_ctl").exists()
