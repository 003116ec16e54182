"""qaflow's PEP 517 build backend: setuptools, plus an opt-in compiled (mypyc) wheel.

Everything is ``setuptools.build_meta`` except three things, all keyed on ``QAFLOW_COMPILE``:

- ``QAFLOW_COMPILE=1`` at build time asks for a compiled wheel: the wheel's build requirements
  gain mypy (which ships mypyc) and qaflow's own dependencies (mypyc compiles with their types,
  attrs' above all), and ``setup.py`` compiles the hot modules. A compile that fails fails the
  build; nothing falls back to pure Python behind the caller's back.
- An editable install never compiles: an extension file beside an edited ``.py`` would run the
  old code. Asking for both is refused with a message, rather than silently ignored.
- Any other value than unset, ``0`` or ``1`` is refused, so a typo cannot mean "pure".

Every wheel is built from an emptied ``build/`` folder (setuptools packs whatever its build
folder holds, so extension modules left by an earlier compiled build would otherwise ride
along, out of step with the source), and is then checked: a compiled wheel holds exactly one
extension module per hot module, a pure wheel none.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tomllib
import zipfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "COMPILE_REQUIRES",
    "build_editable",
    "build_sdist",
    "build_wheel",
    "compile_requested",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "hot_modules",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

COMPILE_REQUIRES = ("mypy==2.4.1",)
"""mypyc is part of mypy; pinned to the version the compiled build is tested with."""

_ROOT = Path(__file__).resolve().parent.parent


def compile_requested() -> bool:
    """Whether ``QAFLOW_COMPILE`` asks for a compiled build (``1``) or not (unset or ``0``)."""
    value = os.environ.get("QAFLOW_COMPILE", "0").strip()
    if value not in ("0", "1", ""):
        raise ValueError(f"QAFLOW_COMPILE must be 0 or 1 (got {value!r})")
    return value == "1"


def _runtime_requires() -> list[str]:
    with open(_ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    """setuptools' requirements, plus mypy and qaflow's dependencies for a compiled wheel."""
    requires = list(_setuptools.get_requires_for_build_wheel(config_settings))
    if compile_requested():
        requires += [*COMPILE_REQUIRES, *_runtime_requires()]
    return requires


def hot_modules() -> tuple[str, ...]:
    """``qaflow._compiled.HOT_MODULES``, read from its file without importing the package (a
    build runs before qaflow's dependencies are importable); ``setup.py`` asks here too."""
    spec = importlib.util.spec_from_file_location(
        "_qaflow_compiled", _ROOT / "src" / "qaflow" / "_compiled.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.HOT_MODULES)


def _extensions_in(wheel: Path) -> set[str]:
    """The dotted names of the qaflow extension modules a wheel holds."""
    found = set()
    for name in zipfile.ZipFile(wheel).namelist():
        suffix = next((s for s in EXTENSION_SUFFIXES if name.endswith(s)), None)
        if suffix is not None and name.startswith("qaflow/"):
            found.add(name[: -len(suffix)].replace("/", "."))
    return found


def _check_wheel(wheel: Path, compiled: bool) -> None:
    found, wanted = _extensions_in(wheel), set(hot_modules()) if compiled else set()
    if found != wanted:
        raise RuntimeError(
            f"{wheel.name}: compiled modules {sorted(found)} where {sorted(wanted)} were expected"
        )


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """A pure wheel, or with ``QAFLOW_COMPILE=1`` a wheel with the hot modules compiled."""
    compiled = compile_requested()
    shutil.rmtree(_ROOT / "build", ignore_errors=True)
    if compiled:
        os.environ["_QAFLOW_MYPYC_BUILD"] = "1"
    try:
        name = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    finally:
        os.environ.pop("_QAFLOW_MYPYC_BUILD", None)
    _check_wheel(Path(wheel_directory) / name, compiled)
    return str(name)


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    """An editable install, always pure Python; refused when a compiled build is asked for."""
    if compile_requested():
        raise RuntimeError(
            "QAFLOW_COMPILE=1 builds a compiled wheel, which an editable install cannot be "
            "(an extension module beside an edited .py would run the old code): install "
            "without -e, or unset QAFLOW_COMPILE"
        )
    return str(_setuptools.build_editable(wheel_directory, config_settings, metadata_directory))
