"""Reading a procedure file's plain data with key paths, collecting every problem at once.

A reader walks the dict that ``tomllib`` (or ``json``) produced. Each :class:`Node` knows its
key path (``ladders[0].stages[2]``) and reports what is wrong into one shared
:class:`Problems`, then carries on, so a file with ten mistakes yields one
:class:`~qaflow.errors.PolicyError` listing all ten. A node refuses keys it was never asked
for (:meth:`Node.finish`), with a "did you mean" for a misspelt one.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Final, TypeVar

from qaflow._convert import IDENT
from qaflow.calendar import Duration
from qaflow.errors import MISSING, PolicyError, PolicyProblem, QAFlowError

__all__ = ["IDENT", "Node", "Problems", "did_you_mean", "parse_toml"]

T = TypeVar("T")

_KIND_NAMES: Final = {
    str: "text",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def did_you_mean(word: object, options: Collection[str]) -> str | None:
    """The closest of ``options`` to ``word``, if one is close enough to be a typo."""
    if not isinstance(word, str) or not options:
        return None
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return close[0] if close else None


class Problems:
    """Every problem found while reading one source, raised together at the end."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._found: list[PolicyProblem] = []

    def __len__(self) -> int:
        return len(self._found)

    def __iter__(self) -> Iterator[PolicyProblem]:
        return iter(self._found)

    def add(
        self,
        path: str,
        expected: str,
        found: object = MISSING,
        *,
        clause: str | None = None,
        hint: str | None = None,
    ) -> None:
        """Record one problem at ``path``."""
        self._found.append(PolicyProblem(path, expected, found, clause, hint))

    def absorb(self, path: str, error: QAFlowError) -> None:
        """Record a typed error raised by a model's own checks, under ``path``."""
        if isinstance(error, PolicyError):
            for problem in error.problems:
                inner = problem.path
                joined = f"{path}.{inner}" if path and inner else path or inner
                self._found.append(
                    PolicyProblem(
                        joined, problem.expected, problem.found, problem.clause, problem.hint
                    )
                )
        else:
            self._found.append(PolicyProblem(path, str(error)))

    def raise_if_any(self) -> None:
        """Raise one :class:`PolicyError` listing every problem, if there is any."""
        if self._found:
            raise PolicyError(source=self.source, problems=self._found)


def parse_toml(text: str, *, source: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a :class:`PolicyError` naming the source."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(source=source, expected=f"valid TOML ({error})") from None


class Node:
    """One table of a procedure file, at a key path, reporting into shared problems."""

    def __init__(self, data: Mapping[str, Any], problems: Problems, path: str = "") -> None:
        self.data = data
        self.problems = problems
        self.path = path
        self._seen: set[str] = set()

    def key_path(self, key: str | int) -> str:
        """The path of ``key`` inside this node."""
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def problem(
        self,
        key: str | int | None,
        expected: str,
        found: object = MISSING,
        *,
        clause: str | None = None,
        hint: str | None = None,
    ) -> None:
        """Record a problem at ``key`` of this node (or at the node itself)."""
        path = self.path if key is None else self.key_path(key)
        self.problems.add(path, expected, found, clause=clause, hint=hint)

    def has(self, key: str) -> bool:
        """Whether the key is present (marks it as known)."""
        self._seen.add(key)
        return key in self.data

    def get(
        self,
        key: str,
        kind: type[T] | tuple[type, ...],
        *,
        default: Any = MISSING,
        expected: str | None = None,
        clause: str | None = None,
    ) -> Any:
        """The value at ``key`` if it is of ``kind``; else record a problem and return ``None``.

        A key with no ``default`` is required. ``bool`` is never accepted as an integer.
        """
        self._seen.add(key)
        if key not in self.data:
            if default is MISSING:
                self.problem(key, f"required: {expected or _describe(kind)}", clause=clause)
                return None
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        is_bool_for_number = isinstance(value, bool) and bool not in kinds
        if is_bool_for_number or not isinstance(value, kinds):
            self.problem(key, expected or _describe(kind), value, clause=clause)
            return None
        return value

    def text(self, key: str, *, default: Any = MISSING, clause: str | None = None) -> Any:
        """Non-empty text at ``key``."""
        value = self.get(key, str, default=default, expected="non-empty text", clause=clause)
        if isinstance(value, str) and not value.strip():
            self.problem(key, "non-empty text", value, clause=clause)
            return None
        return value

    def ident(self, key: str, *, default: Any = MISSING, clause: str | None = None) -> Any:
        """A lower-case identifier at ``key`` (a letter, then letters, digits or ``_``)."""
        expected = "a lower-case identifier (a letter, then letters, digits or '_')"
        value = self.get(key, str, default=default, expected=expected, clause=clause)
        if isinstance(value, str) and not IDENT.match(value):
            self.problem(key, expected, value, clause=clause)
            return None
        return value

    def choice(
        self,
        key: str,
        options: Collection[str],
        *,
        default: Any = MISSING,
        what: str = "one of",
        clause: str | None = None,
    ) -> Any:
        """One of ``options`` at ``key``, with a "did you mean" for a near miss."""
        shown = "(" + ", ".join(repr(o) for o in sorted(options)) + ")"
        value = self.get(key, str, default=default, expected=f"{what} {shown}", clause=clause)
        if isinstance(value, str) and value not in options:
            self.problem(
                key, f"{what} {shown}", value, clause=clause, hint=did_you_mean(value, options)
            )
            return None
        return value

    def duration(
        self, key: str, *, default: Any = MISSING, clause: str | None = None
    ) -> Duration | None:
        """A duration like ``"5 WD"``, ``"24 h"`` or ``"6 weeks"`` at ``key``."""
        expected = "a duration like '5 WD', '24 h', '3 weeks' or '6 months'"
        value = self.get(key, str, default=default, expected=expected, clause=clause)
        if value is None or isinstance(value, Duration):
            return value
        try:
            return Duration.parse(value)
        except QAFlowError:
            self.problem(key, expected, value, clause=clause)
            return None

    def names(
        self,
        key: str,
        *,
        allowed: Collection[str] | None = None,
        default: Any = MISSING,
        what: str = "a declared name",
        clause: str | None = None,
    ) -> tuple[str, ...] | None:
        """A list of names at ``key``; each must be in ``allowed`` when given, none repeated."""
        value = self.get(key, list, default=default, expected="a list of names", clause=clause)
        if value is None or value is default:
            return value
        out: list[str] = []
        for index, item in enumerate(value):
            where = f"{self.key_path(key)}[{index}]"
            if not isinstance(item, str) or not IDENT.match(item):
                self.problems.add(where, "a lower-case identifier", item, clause=clause)
            elif allowed is not None and item not in allowed:
                self.problems.add(
                    where,
                    f"{what} (one of {', '.join(sorted(allowed))})",
                    item,
                    clause=clause,
                    hint=did_you_mean(item, allowed),
                )
            elif item in out:
                self.problems.add(where, "a name not already listed", item, clause=clause)
            else:
                out.append(item)
        return tuple(out)

    def table(self, key: str, *, required: bool = True) -> Node | None:
        """The sub-table at ``key`` as a node (``None`` when absent and not required)."""
        value = self.get(key, dict, default=None if not required else MISSING)
        return None if value is None else Node(value, self.problems, self.key_path(key))

    def tables(self, key: str, *, required: bool = True, min_items: int = 0) -> list[Node]:
        """The array of tables at ``key`` (``[[key]]``), each as a node."""
        value = self.get(key, list, default=[] if not required else MISSING)
        if value is None:
            return []
        if len(value) < min_items:
            self.problem(key, f"at least {min_items} table(s)", value)
        nodes: list[Node] = []
        for index, item in enumerate(value):
            path = f"{self.key_path(key)}[{index}]"
            if isinstance(item, dict):
                nodes.append(Node(item, self.problems, path))
            else:
                self.problems.add(path, "a table", item)
        return nodes

    def build(self, factory: Callable[..., T], /, **fields: Any) -> T | None:
        """Construct a model record, turning its own validation errors into problems here."""
        try:
            return factory(**fields)
        except QAFlowError as error:
            self.problems.absorb(self.path, error)
            return None

    def finish(self, *, also: Collection[str] = ()) -> None:
        """Refuse every key that was not read (or listed in ``also``), suggesting a near one."""
        known = self._seen | set(also)
        for key in self.data:
            if key not in known:
                self.problem(
                    key,
                    f"is not a known key (known here: {', '.join(sorted(known)) or 'none'})",
                    hint=did_you_mean(key, known),
                )


def _describe(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
