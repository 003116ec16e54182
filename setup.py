"""Extension modules for a compiled build; everything else about the package is pyproject.toml.

The in-tree build backend (``build_backend/qaflow_build.py``) sets ``_QAFLOW_MYPYC_BUILD=1``
only while it builds a wheel asked for with ``QAFLOW_COMPILE=1``. Then this file compiles the
hot modules (``qaflow._compiled.HOT_MODULES``) with mypyc; otherwise it adds nothing, so sdists,
editable installs and the default wheel are pure Python and need no compiler.
"""

from __future__ import annotations

import os

from setuptools import setup


def _ext_modules() -> list[object]:
    if os.environ.get("_QAFLOW_MYPYC_BUILD") != "1":
        return []
    from mypyc.build import mypycify
    from qaflow_build import hot_modules  # the backend that set the variable: on the path

    paths = [os.path.join("src", *m.split(".")) + ".py" for m in hot_modules()]
    return list(mypycify(paths, opt_level="3", verbose=False))


setup(ext_modules=_ext_modules())
