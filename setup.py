"""Extension modules for a compiled build; everything else about the package is pyproject.toml.

The in-tree build backend (``build_backend/qaflow_build.py``) sets ``_QAFLOW_MYPYC_BUILD=1``
only while it builds a wheel asked for with ``QAFLOW_COMPILE=1``. Then this file compiles the
hot modules (``qaflow._compiled.HOT_MODULES``) with mypyc; otherwise it adds nothing, so sdists,
editable installs and the default wheel are pure Python and need no compiler.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def _hot_modules() -> tuple[str, ...]:
    """The list from ``src/qaflow/_compiled.py``, read without importing the package."""
    spec = importlib.util.spec_from_file_location(
        "_qaflow_compiled", HERE / "src" / "qaflow" / "_compiled.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.HOT_MODULES)


def _ext_modules() -> list[object]:
    if os.environ.get("_QAFLOW_MYPYC_BUILD") != "1":
        return []
    from mypyc.build import mypycify

    paths = [os.path.join("src", *m.split(".")) + ".py" for m in _hot_modules()]
    return list(mypycify(paths, opt_level="3", verbose=False))


setup(ext_modules=_ext_modules())
