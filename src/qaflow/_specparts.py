"""Parts of a :class:`~qaflow.spec.MachineSpec` that are checks: payload fields, guards as
data (a CEL expression or a vocabulary reference, returning a verdict) and computed durations.

Kept apart from :mod:`qaflow.spec` so that module stays the spec's shape; every name here is
re-exported there.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from qaflow import vocabulary
from qaflow.calendar import Duration
from qaflow.errors import PolicyError, ValidationError
from qaflow.procedure.expr import compile_expression
from qaflow.vocabulary import Kind

if TYPE_CHECKING:
    from qaflow.spec import Context

__all__ = [
    "GUARD_NAMES",
    "Args",
    "DurationRef",
    "Entry",
    "Field",
    "FieldKind",
    "Guard",
    "bindings",
    "call_with",
    "entry_parts",
]

FieldKind = Literal["str", "int", "float", "bool", "choice", "list", "dict", "datetime", "any"]
Check = Callable[["Context"], bool]


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),
    "bool": bool,
    "list": list,
    "dict": dict,
    "datetime": str,
}
"""The Python type(s) a value of each plain field kind must be (built once, not per check)."""


@attrs.frozen
class Field:
    """One payload field a transition accepts, with its type and range."""

    name: str
    kind: FieldKind = "str"
    required: bool = True
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    max_length: int | None = None

    def check(self, value: Any) -> None:
        """Raise :class:`ValidationError` naming this field unless ``value`` fits."""
        kind = self.kind
        if kind == "str" and type(value) is str:  # the common case: the same checks, fewer
            if self.max_length is not None and len(value) > self.max_length:
                raise ValidationError(
                    field=self.name, value=len(value), expected=f"at most {self.max_length} long"
                )
            if self.required and not value.strip():
                raise ValidationError(field=self.name, value=value, expected="non-empty text")
            return
        if kind == "any":
            return
        if kind == "choice":
            if value not in self.choices:
                raise ValidationError(
                    field=self.name,
                    value=value,
                    expected="one of " + ", ".join(repr(c) for c in self.choices),
                )
            return
        expected_type = _FIELD_TYPES[kind]
        v: Any = value
        if not isinstance(value, expected_type) or (
            kind in ("int", "float") and isinstance(value, bool)
        ):
            raise ValidationError(field=self.name, value=value, expected=f"of type {kind}")
        if kind in ("int", "float"):
            lo, hi = self.min, self.max
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                bounds = f"in ({_fmt(lo)}..{_fmt(hi)})"
                raise ValidationError(field=self.name, value=value, expected=f"a number {bounds}")
        if self.max_length is not None and kind in ("str", "list") and len(v) > self.max_length:
            raise ValidationError(
                field=self.name, value=len(v), expected=f"at most {self.max_length} long"
            )
        if kind == "str" and self.required and not v.strip():
            raise ValidationError(field=self.name, value=value, expected="non-empty text")
        if kind == "datetime":
            try:
                parsed = datetime.fromisoformat(v)
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                raise ValidationError(
                    field=self.name, value=value, expected="an aware ISO 8601 datetime"
                )


def _fmt(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else str(bound)


GUARD_NAMES: Final = ("actor", "data", "dest", "payload", "reason", "state", "trigger")
"""The names a guard or condition written as an expression may read (see :func:`bindings`)."""

Args = tuple[tuple[str, Any], ...]


def _args(value: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> Args:
    """Arguments as sorted (name, value) pairs of JSON-like values, lists as tuples."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), _freeze(v)) for k, v in items))


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return _args(value)
    if isinstance(value, Duration):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise PolicyError(
        path="args", value=value, expected="JSON-like values (text, numbers, true/false, lists)"
    )


def bindings(ctx: Context) -> dict[str, Any]:
    """What an expression sees of a command: ``actor`` (``id``, ``role``), ``data`` (the
    workflow before), ``payload``, ``state`` (the source), ``dest``, ``trigger`` and ``reason``
    (the payload's reason, else the workflow's)."""
    payload = ctx.payload
    data = ctx.data
    return {
        "actor": {"id": ctx.actor.id, "role": ctx.actor.role},
        "data": data,
        "payload": payload,
        "state": ctx.source,
        "dest": ctx.dest,
        "trigger": ctx.trigger,
        "reason": payload.get("reason", data.get("reason")),
    }


Entry = tuple[Callable[..., Any], dict[str, Any]]
_PARTS: weakref.WeakKeyDictionary[Callable[..., Any], Entry] = weakref.WeakKeyDictionary()


def _entry(kind: Kind, use: str, args: Args) -> Callable[[Context], Any]:
    fn = vocabulary.lookup(kind, use)
    kwargs = dict(args)
    vocabulary.check_args(kind, use, kwargs)  # a definition it could not run with: now
    call = lambda ctx: fn(ctx, kwargs)  # noqa: E731
    _PARTS[call] = (fn, kwargs)
    return call


def call_with(ctx: Context, check: Callable[[Context], Any]) -> Any:
    """``check(ctx)``: a plain callable in the ``fn(ctx, arg)`` form of a vocabulary entry."""
    return check(ctx)


def entry_parts(call: Callable[..., Any]) -> Entry | None:
    """The vocabulary function and arguments behind a callable a ``use`` reference became
    (``None`` for any other callable): a compiled plan (:mod:`qaflow._program`) calls the
    function with its arguments directly, without the wrapper in between."""
    try:
        return _PARTS.get(call)
    except TypeError:  # not weakly referenceable: not one of ours
        return None


def _one_of(what: str, expr: str | None, use: str | None, fn: object) -> None:
    given = sum(x is not None for x in (expr, use, fn))
    if given != 1:
        raise PolicyError(
            path=what, value=given, expected="exactly one of an expression, a 'use' or a callable"
        )


def _unset(ctx: Context) -> Any:  # pragma: no cover - replaced in __attrs_post_init__
    raise PolicyError(expected="an effect with a 'use' or a callable")


@attrs.frozen(init=False)
class Guard:
    """A condition a transition needs, named in plain words with the clause it enforces.

    The check is data: a CEL expression (``expr``, reading :data:`GUARD_NAMES`) or a named
    vocabulary guard (``use`` with ``args``); it returns a verdict and only the engine raises
    :class:`~qaflow.errors.GuardFailed`. The older closure form ``Guard(condition, check,
    clause)`` still works (``fn``), but a spec holding one is not serialisable.
    """

    condition: str
    clause: str | None = None
    expr: str | None = None
    use: str | None = None
    args: Args = ()
    fn: Check | None = attrs.field(default=None, eq=False, repr=False)
    _verdict: Check = attrs.field(init=False, eq=False, repr=False)

    def __init__(
        self,
        condition: str,
        clause: str | Check | None = None,
        expr: str | None = None,
        use: str | None = None,
        args: Mapping[str, Any] | Args | None = (),
        *,
        fn: Check | None = None,
    ) -> None:
        if callable(clause):  # the older form: Guard(condition, check, clause)
            fn, clause, expr = clause, expr, None
        _one_of(f"guard {condition!r}", expr, use, fn)
        frozen = _args(args)
        self.__attrs_init__(condition, clause, expr, use, frozen, fn)
        verdict: Check
        if fn is not None:
            verdict = fn
        elif use is not None:
            verdict = _entry("guard", use, frozen)
        else:
            assert expr is not None
            compiled = compile_expression(expr, GUARD_NAMES, path=f"guard {condition!r}")
            verdict = lambda ctx: compiled.test(bindings(ctx))  # noqa: E731
        object.__setattr__(self, "_verdict", verdict)

    def check(self, ctx: Context) -> bool:
        """The verdict on ``ctx``: ``True`` when the condition is met."""
        return bool(self._verdict(ctx))

    def parts(self) -> tuple[Callable[[Context, Any], Any], Any]:
        """``(fn, arg)`` such that ``fn(ctx, arg)`` is the verdict (truthy when met): a
        vocabulary guard with its arguments, else a caller of the check itself."""
        return entry_parts(self._verdict) or (call_with, self._verdict)


@attrs.frozen
class DurationRef:
    """A duration worked out per command by a named vocabulary entry (e.g. the length the
    raiser agreed at raise, within the policy's bounds)."""

    use: str
    args: Args = attrs.field(default=(), converter=_args)
    _fn: Callable[[Context], Duration] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_fn", _entry("duration", self.use, self.args))

    def __call__(self, ctx: Context) -> Duration:
        return self._fn(ctx)
