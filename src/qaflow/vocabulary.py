"""The vocabulary: named guards, updates, effect choosers and durations a spec may cite.

A :class:`~qaflow.spec.MachineSpec` is data, so it cannot hold a Python closure. Where a
procedure needs logic that is not a one-line condition (grade from score bands, record a stage
response, open the granted extension), the machine module that owns that logic registers it
here under a stable name, and the spec cites the name with plain-data arguments::

    @vocabulary.guard("escalation.no_response_yet")
    def _no_response(ctx: Context, args: Mapping[str, Any]) -> bool: ...

    Guard("no response recorded at this stage yet", use="escalation.no_response_yet")

A guard returns a verdict (``True``: met); only the engine raises ``GuardFailed``. An update
returns the data keys to set; an effect chooser returns effects; a duration returns a
``Duration``. Every entry receives the command's context and the spec's ``args`` (a mapping of
JSON-like values). Names are ``<area>.<name>``; registering a name twice with a different
function is refused. This module imports nothing from the machines, so the spec and the engine
can resolve names without importing any machine.

An entry whose ``args`` come from a policy may also register a load-time check of them
(:func:`checks`): it runs when a spec citing the entry is built, so a definition the entry
could not run with is refused then, as a :class:`~qaflow.errors.PolicyError` naming the entry,
never as an untyped error when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from qaflow.errors import PolicyError, QAFlowError

if TYPE_CHECKING:
    from qaflow.calendar import Duration
    from qaflow.spec import Context, Effect

__all__ = [
    "KINDS",
    "Kind",
    "check_args",
    "checks",
    "duration",
    "effects",
    "guard",
    "lookup",
    "names",
    "update",
]

Kind = Literal["guard", "update", "effects", "duration"]
KINDS: Final[tuple[Kind, ...]] = ("guard", "update", "effects", "duration")

GuardFn = Callable[["Context", Mapping[str, Any]], bool]
UpdateFn = Callable[["Context", Mapping[str, Any]], Mapping[str, Any]]
EffectsFn = Callable[["Context", Mapping[str, Any]], Iterable["Effect"]]
DurationFn = Callable[["Context", Mapping[str, Any]], "Duration"]

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: Final[dict[Kind, dict[str, Callable[..., Any]]]] = {kind: {} for kind in KINDS}


def _register(kind: Kind, name: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        table = _REGISTRY[kind]
        known = table.get(name)
        same = known is not None and (
            known is fn
            or (known.__module__, known.__qualname__) == (fn.__module__, fn.__qualname__)
        )
        if known is not None and not same:
            raise PolicyError(
                path=name, expected=f"a {kind} name not already registered", value=name
            )
        table[name] = fn
        return fn

    return decorate


def guard(name: str) -> Callable[[F], F]:
    """Register a guard ``(ctx, args) -> bool`` under ``name``."""
    return _register("guard", name)


def update(name: str) -> Callable[[F], F]:
    """Register an update ``(ctx, args) -> mapping of data keys`` under ``name``."""
    return _register("update", name)


def effects(name: str) -> Callable[[F], F]:
    """Register an effect chooser ``(ctx, args) -> effects`` under ``name``."""
    return _register("effects", name)


def duration(name: str) -> Callable[[F], F]:
    """Register a duration ``(ctx, args) -> Duration`` under ``name``."""
    return _register("duration", name)


_ArgsCheck = Callable[[Mapping[str, Any]], object]
_CHECKS: Final[dict[tuple[Kind, str], _ArgsCheck]] = {}


def checks(kind: Kind, name: str) -> Callable[[_ArgsCheck], _ArgsCheck]:
    """Register a load-time check of the ``args`` a spec gives entry ``name`` of ``kind``:
    it raises on arguments the entry could not run with (see :func:`check_args`)."""

    def decorate(fn: _ArgsCheck) -> _ArgsCheck:
        _CHECKS[(kind, name)] = fn
        return fn

    return decorate


def check_args(kind: Kind, name: str, args: Mapping[str, Any]) -> None:
    """Run the load-time check registered for ``name`` (if any) on ``args``; any failure is
    a :class:`PolicyError` naming the entry."""
    check = _CHECKS.get((kind, name))
    if check is None:
        return
    try:
        check(args)
    except (QAFlowError, KeyError, TypeError, ValueError, IndexError) as error:
        why = f"missing {error}" if isinstance(error, KeyError) else type(error).__name__
        if isinstance(error, QAFlowError):
            why = str(error)
        raise PolicyError(
            path=name, expected=f"arguments the {kind} {name!r} can run with ({why})"
        ) from None


def lookup(kind: Kind, name: str) -> Callable[..., Any]:
    """The entry ``name`` of ``kind``; :class:`PolicyError` with a "did you mean" if unknown."""
    table = _REGISTRY[kind]
    try:
        return table[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, sorted(table), n=1, cutoff=0.6)
        raise PolicyError(
            path=name,
            value=name,
            expected=f"a registered {kind} name",
            hint=close[0] if close else None,
        ) from None


def names(kind: Kind) -> tuple[str, ...]:
    """Every registered name of ``kind``, sorted."""
    return tuple(sorted(_REGISTRY[kind]))
