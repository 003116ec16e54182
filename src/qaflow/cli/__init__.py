"""The ``qaflow`` command line: a thin click layer over the library.

Every command maps to one library call; errors print one line and exit with status 1 (2 for
usage errors, as click does). Commands that write say so in their help. Each command group
lives in a private module of this package and attaches itself to :func:`main`.
"""

from __future__ import annotations

from qaflow.cli import (  # noqa: F401  (they register commands)
    _check,
    _copy,
    _demo,
    _ops,
    _policy,
    _report,
    _serve,
    _workflows,
)
from qaflow.cli._main import main

__all__ = ["main"]
