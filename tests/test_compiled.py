"""The compiled build (mypyc): the ``qaflow.compiled`` flag, and the build backend's rules.

CI runs the whole suite twice: against the README's editable (pure-Python) install, and
against a wheel built with ``QAFLOW_COMPILE=1`` in a second virtual environment. It sets
``QAFLOW_EXPECT_COMPILED`` to 0 and 1 for the two, so a compiled leg that silently tested the
pure code (an import of the source tree, a build that compiled nothing) fails here.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from types import ModuleType

import pytest

import qaflow
from qaflow._compiled import HOT_MODULES, compiled_modules, is_compiled

ROOT = Path(__file__).resolve().parent.parent


def _backend() -> ModuleType:
    """The in-tree build backend, loaded from its file (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location(
        "qaflow_build", ROOT / "build_backend" / "qaflow_build.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs_compiled(name: str) -> bool:
    origin = importlib.import_module(name).__spec__.origin or ""
    return origin.endswith(tuple(EXTENSION_SUFFIXES))


def test_every_hot_module_is_a_source_module() -> None:
    """A renamed or moved module must be renamed in the list too, or the build would fail."""
    for name in HOT_MODULES:
        assert (ROOT / "src" / Path(*name.split("."))).with_suffix(".py").is_file(), name
    assert len(set(HOT_MODULES)) == len(HOT_MODULES)


def test_the_flag_says_what_the_imports_run() -> None:
    """``compiled`` and ``compiled_modules()`` agree with the files Python actually loaded."""
    loaded = {name: _runs_compiled(name) for name in HOT_MODULES}
    assert compiled_modules() == tuple(name for name, ext in loaded.items() if ext)
    assert qaflow.compiled is is_compiled() is all(loaded.values())


def test_the_install_is_the_one_expected() -> None:
    expected = os.environ.get("QAFLOW_EXPECT_COMPILED")
    if expected is None:
        pytest.skip("QAFLOW_EXPECT_COMPILED unset; .ci/run sets it for each of its two installs")
    assert expected in ("0", "1")
    assert qaflow.compiled is (expected == "1")
    if expected == "1":  # the installed wheel, not the source tree, is what the suite imports
        assert not Path(qaflow.__file__).resolve().is_relative_to(ROOT / "src")


@pytest.mark.parametrize(
    ("value", "asked"), [(None, False), ("", False), ("0", False), ("1", True), (" 1 ", True)]
)
def test_compile_is_asked_for_with_1_only(
    monkeypatch: pytest.MonkeyPatch, value: str | None, asked: bool
) -> None:
    if value is None:
        monkeypatch.delenv("QAFLOW_COMPILE", raising=False)
    else:
        monkeypatch.setenv("QAFLOW_COMPILE", value)
    assert _backend().compile_requested() is asked


@pytest.mark.parametrize("value", ["yes", "true", "2"])
def test_a_misspelt_request_is_refused_not_read_as_pure(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("QAFLOW_COMPILE", value)
    with pytest.raises(ValueError, match="QAFLOW_COMPILE must be 0 or 1"):
        _backend().compile_requested()


def test_an_editable_compiled_install_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An extension beside an edited ``.py`` would run stale code, so -e never compiles."""
    monkeypatch.setenv("QAFLOW_COMPILE", "1")
    with pytest.raises(RuntimeError, match="editable install"):
        _backend().build_editable(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_a_compiled_wheel_requires_mypy_and_the_dependencies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = _backend()
    monkeypatch.chdir(ROOT)  # setuptools reads setup.py from the working directory
    monkeypatch.delenv("QAFLOW_COMPILE", raising=False)
    pure = backend.get_requires_for_build_wheel()
    monkeypatch.setenv("QAFLOW_COMPILE", "1")
    compiled = backend.get_requires_for_build_wheel()
    assert not any(r.startswith("mypy") for r in pure)
    assert compiled[: len(pure)] == pure
    assert "mypy==2.4.1" in compiled
    assert "attrs>=23.1" in compiled and "cattrs>=23.2" in compiled


def _wheel(path: Path, names: list[str]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as wheel:
        for name in names:
            wheel.writestr(name, b"")
    return path


def test_a_wheel_must_hold_exactly_the_hot_modules_compiled(tmp_path: Path) -> None:
    """What a build left in ``build/`` from an earlier one (a stale extension) fails it."""
    backend, ext = _backend(), EXTENSION_SUFFIXES[0]
    exact = [name.replace(".", "/") + ext for name in HOT_MODULES]
    backend._check_wheel(_wheel(tmp_path / "c.whl", [*exact, "qaflow/engine.py"]), True)
    backend._check_wheel(_wheel(tmp_path / "p.whl", ["qaflow/engine.py"]), False)
    stale = _wheel(tmp_path / "s.whl", [*exact, f"qaflow/engine{ext}"])
    with pytest.raises(RuntimeError, match=r"qaflow\.engine"):
        backend._check_wheel(stale, True)
    with pytest.raises(RuntimeError, match="compiled modules"):
        backend._check_wheel(_wheel(tmp_path / "q.whl", [exact[0]]), False)
    with pytest.raises(RuntimeError, match="compiled modules"):
        backend._check_wheel(_wheel(tmp_path / "r.whl", exact[1:]), True)


def test_setup_and_the_backend_read_one_list_of_hot_modules() -> None:
    """``setup.py`` compiles what the backend checks the wheel for: both read
    ``HOT_MODULES`` through the backend's ``hot_modules`` (one loader, not two)."""
    assert _backend().hot_modules() == HOT_MODULES
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert "from qaflow_build import hot_modules" in setup
    assert "_compiled.py" not in setup
