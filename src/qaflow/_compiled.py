"""Which modules a compiled build of qaflow compiles, and whether this install runs them compiled.

A compiled build (``QAFLOW_COMPILE=1 pip install .``, see the README) compiles the modules named
in :data:`HOT_MODULES` with mypyc: the same source, turned into C extension modules, with the
pure-Python ``.py`` files still installed beside them. Python's path finder prefers an extension
module to a source file in the same directory, so an extension file beside a module's ``.py`` is
what an import of that module runs. :func:`is_compiled` answers from those files without
importing anything, so ``import qaflow`` stays cheap.

What is not on the list, and why: compiled code checks every argument against its annotation
and raises ``TypeError``, so a public entry point that validates its own arguments (``Engine``,
``simulate_escalations``) stays a Python facade and keeps raising ``QAFlowError``: the work
behind it is compiled (``qaflow._command``, ``qaflow.sim._play``), taking ``object`` for what
a caller supplies and checking it by hand; compiled attrs classes lose their field
annotations, which cattrs needs, so the records and the simulation results stay Python
(the :class:`~qaflow.sim._tally.Tally` that counts them is a plain class, compiled); and a
class that Python code subclasses (``RowReads``) cannot be compiled.

This module imports only the standard library: ``setup.py`` reads :data:`HOT_MODULES` from it at
build time, before qaflow's dependencies are importable.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__all__ = ["HOT_MODULES", "compiled_modules", "is_compiled"]

HOT_MODULES: tuple[str, ...] = (
    # the command path: plans, programs, checks, effects, the step, working days
    "qaflow._authorise",
    "qaflow._build",
    "qaflow._checks",
    "qaflow._command",
    "qaflow._compute",
    "qaflow._effects",
    "qaflow._plans",
    "qaflow._program",
    "qaflow._specs",
    "qaflow._tick",
    "qaflow._timetext",
    "qaflow.calendar",
    "qaflow.machines._escalation_vocab",
    "qaflow.store._due",
    "qaflow.store._simulation",
    # the simulation driver: a chunk's loop and paths' ends, actors, scheduler, tally
    "qaflow.sim._escalation",
    "qaflow.sim._moments",
    "qaflow.sim._play",
    "qaflow.sim._scheduler",
    "qaflow.sim._tally",
    # the fold (replay and verify) and the payload codec
    "qaflow._fold",
    "qaflow._replay",
    "qaflow.store._codec",
)
"""The modules a compiled build compiles (dotted names, each a ``.py`` under ``src/``)."""

_PACKAGE = Path(__file__).resolve().parent


def _extension_beside(module: str) -> bool:
    *parents, leaf = module.split(".")[1:]
    folder = _PACKAGE.joinpath(*parents)
    return any((folder / f"{leaf}{suffix}").is_file() for suffix in EXTENSION_SUFFIXES)


def compiled_modules() -> tuple[str, ...]:
    """The modules of :data:`HOT_MODULES` that this install imports as compiled extensions."""
    return tuple(m for m in HOT_MODULES if _extension_beside(m))


def is_compiled() -> bool:
    """True when every module of :data:`HOT_MODULES` runs compiled (a compiled build)."""
    return len(compiled_modules()) == len(HOT_MODULES)
