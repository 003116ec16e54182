"""The expression port: conditions a council writes in a file, compiled once, never ``eval``.

A procedure file states conditions as text in CEL, the Common Expression Language (a safe,
standard, side-effect-free and non-Turing-complete language: no loops, no assignment, no
imports, every evaluation terminates). :func:`compile_expression` compiles one against the
names the place it appears declares (``data``, ``payload``, ``actor``, ``reason``...) and
refuses, at load time, a syntax error or a name that is not declared, with the key path of
the expression and a "did you mean" for a misspelt name. An :class:`Expression` is then
evaluated many times against plain JSON-like values.

The runtime is the ``common-expression-language`` package (module ``cel``, a compiled
implementation): compiling takes tens of microseconds and evaluating tens, where the pure
Python ``cel-python`` took about a millisecond for each and only found an undeclared name
when the expression was evaluated.

An evaluation that fails at run time (a key the data does not hold, a type mismatch) is not
an answer: :meth:`Expression.test` treats it as "not met", so a guard written in a file
refuses rather than lets through. ``has(payload.x)`` tests for a key before reading it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from typing import Any, Final

import attrs
import cel

from qaflow.errors import PolicyError

__all__ = ["Expression", "compile_expression"]

_SYNTAX: Final = re.compile(r"Syntax error: (?P<what>.*?)(?:\n|$)")
_CARET: Final = re.compile(r"<input>:(?P<line>\d+):(?P<col>\d+):")


@functools.lru_cache(maxsize=4096)
def _program(source: str) -> Any:
    return cel.compile(source)


@attrs.frozen
class Expression:
    """One compiled CEL expression: its source text (what is stored and hashed) and the
    top-level names it reads."""

    source: str
    names: frozenset[str]
    _program: Any = attrs.field(eq=False, repr=False, hash=False)

    def evaluate(self, bindings: Mapping[str, Any]) -> Any:
        """The value of the expression with ``bindings`` (only the names it reads are passed).

        Raises :class:`ValueError` (or the runtime's error) when evaluation fails.
        """
        return self._program.execute({k: bindings[k] for k in self.names if k in bindings})

    def test(self, bindings: Mapping[str, Any]) -> bool:
        """Whether the expression is ``true``; a failed evaluation or a non-bool is ``false``."""
        try:
            return self.evaluate(bindings) is True
        except Exception:
            return False


def compile_expression(
    source: object,
    names: Collection[str],
    *,
    path: str = "",
    where: str | None = None,
) -> Expression:
    """Compile ``source`` against the declared ``names``; raise :class:`PolicyError` if it is
    not a valid CEL expression or reads a name that is not declared.

    ``path`` is the key path of the expression in its file, ``where`` the file.
    """
    if isinstance(source, str) and source.strip():
        declared = tuple(sorted(names))
        found = _compiled(source, declared)
        if isinstance(found, Expression):
            return found
        expected, hint = found
    else:
        expected, hint = "a CEL expression (non-empty text)", None
    raise PolicyError(source=where, path=path, value=source, expected=expected, hint=hint)


@functools.lru_cache(maxsize=4096)
def _compiled(source: str, declared: tuple[str, ...]) -> Expression | tuple[str, str | None]:
    """The expression, or what is wrong with it (expected, did-you-mean), once per source."""
    try:
        program = _program(source)
    except (ValueError, RuntimeError) as error:
        return f"a valid CEL expression ({_syntax(str(error))})", None
    # Names bound by macros (``x`` in ``list.exists(x, ...)``) appear as variables too.
    bound = set(re.findall(r"\.\s*(?:all|exists|exists_one|map|filter)\(\s*([a-z_]\w*)", source))
    used = frozenset(program.variables())
    unknown = sorted(used - set(declared) - bound)
    if unknown:
        from qaflow.procedure._reader import did_you_mean

        return (
            f"an expression reading only the declared names ({', '.join(declared)}); "
            f"it reads {', '.join(map(repr, unknown))}",
            did_you_mean(unknown[0], declared),
        )
    return Expression(source, used - bound, program)


def _syntax(message: str) -> str:
    found = _SYNTAX.search(message)
    at = _CARET.search(message)
    what = found.group("what") if found else message.splitlines()[0]
    if at:
        return f"{what} at column {int(at.group('col')) + 1}"
    return what
