"""Policies as readable specs: a Markdown page per shipped policy for its owner to check.

For each clause the page gives the rule in plain words, where the policy's machines use it
(deadlines, guards, notifications, tasks, transitions), and the tests that enforce it, found
by the clause ID in a test's name (``test_BX_AUD_12_...``) or docstring, whatever prefix
the council chose. A clause no test names is listed as such: that is a gap to close.
"""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from qaflow.diagram import mermaid
from qaflow.policies import SHIPPED_CLAUSE_PREFIXES
from qaflow.policies.clauses import CLAUSES
from qaflow.procedure._defaults import QaflowDefault
from qaflow.spec import (
    AddTask,
    DeadlineRule,
    Derived,
    DurationRef,
    MachineSpec,
    Notify,
    OpenDeadline,
)

__all__ = ["clause_uses", "duration_text", "find_clause_tests", "policy_page", "write_policy_docs"]

_ID = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Z0-9]+(?:[-_][A-Z][A-Z0-9]*)*[-_]\d{2,3}(?!\d)")
"""A clause ID with any prefix a council chooses: ``BX-AUD-07``, ``EX-ESC-01``, ``RBK-ESC-02``."""


def _norm(found: str) -> str:
    return found.replace("_", "-")


def find_clause_tests(tests_dir: str | Path) -> dict[str, list[str]]:
    """Clause ID -> the tests (``file::name``) whose name or docstring names it."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in sorted(Path(tests_dir).rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not node.name.startswith(("test", "Test")):
                    continue
                text = node.name + " " + (ast.get_docstring(node) or "")
                for match in _ID.findall(text):
                    found[_norm(match)].add(f"{path.name}::{node.name}")
    return {k: sorted(v) for k, v in found.items()}


def duration_text(duration: object) -> str:
    """A deadline's length in words: "5 WD", "agreed per case" (a timescale agreed at raise,
    named in the vocabulary), or "computed" (an older-style callable)."""
    if isinstance(duration, DurationRef):
        return f"agreed per case ({duration.use})"
    return "computed" if callable(duration) else str(duration)


def _rule_text(rule: DeadlineRule) -> str:
    duration = duration_text(rule.duration)
    then = f", breach fires `{rule.breach_trigger}`" if rule.breach_trigger else ""
    told = f", a miss tells {', '.join(rule.notify)}" if rule.notify else ""
    return f"deadline `{rule.name}` {duration}{then}{told}"


def clause_uses(spec: MachineSpec) -> dict[str, list[str]]:
    """Clause ID -> what in ``spec`` cites it, in words (values included)."""
    uses: dict[str, list[str]] = defaultdict(list)
    for state in spec.states:
        for rule in state.deadlines:
            if rule.clause:
                uses[rule.clause].append(f"`{state.name}`: {_rule_text(rule)}")
        _effect_uses(uses, state.on_enter, f"entering `{state.name}`")
    for t in spec.transitions:
        where = f"`{t.trigger}` ({', '.join(t.sources)} -> {t.dest or 'same state'})"
        if t.clause:
            uses[t.clause].append(f"{where} by {', '.join(sorted(t.roles))}")
        for guard in t.guards:
            if guard.clause:
                uses[guard.clause].append(f"{where} requires {guard.condition}")
        _effect_uses(uses, t.effects, where)
    _rolling_uses(uses, spec)
    return {k: list(dict.fromkeys(v)) for k, v in uses.items()}


def _rolling_uses(uses: dict[str, list[str]], spec: MachineSpec) -> None:
    for r in spec.rolling:
        met = f", met by {' or '.join(r.met_by)}" if r.met_by else ""
        opened = f", opened by {' or '.join(r.restart_by)}" if r.restart_by else ""
        for c in r.cadence:
            when = f" when {c.when}" if c.when else ""
            lengths = [f"first {c.first}"] if c.first else []
            lengths += [
                f"then every {w.every} until {w.until} after `{c.since}`" for w in c.windows
            ]
            lengths += [f"every {c.every}"] if c.every else []
            text = f"timescale `{r.name}`{when}: {', '.join(lengths)}{met}{opened}"
            uses[c.clause or r.clause or "?"].append(text)


def _effect_uses(uses: dict[str, list[str]], effects: Iterable[object], where: str) -> None:
    for effect in effects:
        if isinstance(effect, Notify) and effect.clause:
            uses[effect.clause].append(f"{where} notifies {', '.join(effect.roles)}")
        elif isinstance(effect, AddTask) and effect.clause:
            due = f" due within {effect.within}" if effect.within else ""
            uses[effect.clause].append(
                f"{where} opens task `{effect.kind}` for {effect.owner_role}{due}"
            )
        elif isinstance(effect, OpenDeadline) and effect.rule.clause:
            uses[effect.rule.clause].append(f"{where} opens {_rule_text(effect.rule)}")
        elif isinstance(effect, Derived) and effect.use == "timescales.tasks":
            for clause, kind, owner, within, when in dict(effect.args)["tasks"]:
                due = f" due within {within}" if within else ""
                cond = f" when {when}" if when else ""
                uses[clause].append(f"{where} opens task `{kind}` for {owner}{due}{cond}")


def policy_page(
    policy: str,
    specs: Iterable[MachineSpec],
    tests_dir: str | Path | None,
    defaults: Iterable[QaflowDefault] = (),
) -> str:
    """The Markdown page for one policy's machines.

    ``tests_dir`` None: the tests were not searched, and the page says so instead of listing
    every clause as untested. ``defaults``: the values the policy's files hold that its
    framework does not give, listed under "Defaults to confirm" and beside their clauses.
    """
    defaults = list(defaults)
    specs = [s for s in specs if s.policy == policy]
    tests = find_clause_tests(tests_dir) if tests_dir is not None else {}
    uses: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        for cid, items in clause_uses(spec).items():
            uses[cid].extend(f"{spec.name}: {item}" for item in items)
    prefixes = SHIPPED_CLAUSE_PREFIXES.get(policy, ())
    ids = sorted({c for c in CLAUSES if c.startswith(prefixes)} | set(uses))
    versions = sorted({s.policy_version for s in specs})
    lines = [f"# Policy `{policy}` (version {', '.join(versions) or '?'})", ""]
    lines += [
        "Each clause: the rule, where this policy's machines use it, and the tests that",
        "enforce it. Generated by `qaflow policy docs`; do not edit by hand.",
        "",
    ]
    untested = [c for c in ids if c not in tests]
    if tests_dir is None:
        lines += [f"{len(ids)} clauses. The tests were not searched, so none is listed.", ""]
    else:
        lines += [f"{len(ids)} clauses; {len(ids) - len(untested)} named by at least one test.", ""]
    lines += ["## Clauses", ""]
    for cid in ids:
        known = CLAUSES.get(cid)
        lines.append(f"### {cid}" + (f" ({known.topic})" if known else ""))
        lines += ["", known.rule if known else "(not in the clause catalogue)", ""]
        for item in uses.get(cid, []):
            lines.append(f"- uses: {item}")
        for mark in defaults:
            if mark.fills == cid:
                lines.append(f"- qaflow default: `{mark.path}` = {_shown(mark.value)}")
        for test in tests.get(cid, []):
            lines.append(f"- tested by: `{test}`")
        if cid not in tests and tests_dir is not None:
            lines.append("- tested by: **no test names this clause**")
        lines.append("")
    lines += _defaults_section(defaults)
    lines += ["## Machines", ""]
    for spec in specs:
        lines += [f"### {spec.name}", "", "```mermaid", mermaid(spec).rstrip(), "```", ""]
    return "\n".join(lines)


def _shown(value: object) -> str:
    return f"`{json.dumps(value, default=str)}`"


def _defaults_section(defaults: list[QaflowDefault]) -> list[str]:
    """ "Defaults to confirm": every value the files hold that the framework does not give."""
    lines = ["## Defaults to confirm", ""]
    if not defaults:
        return [*lines, "None: every value comes from the council's framework.", ""]
    lines += [
        f"{len(defaults)} values are qaflow's choice where the framework gives none; the",
        "policy owner confirms or changes each in the file.",
        "",
    ]
    for mark in defaults:
        fills = f" (fills {mark.fills})" if mark.fills else " (no clause)"
        lines.append(f"- `{mark.path}` = {_shown(mark.value)}{fills}: {mark.why}")
    return [*lines, ""]


def write_policy_docs(
    out_dir: str | Path,
    specs: Iterable[MachineSpec],
    tests_dir: str | Path | None,
    defaults: Mapping[str, Iterable[QaflowDefault]] | None = None,
) -> list[Path]:
    """Write one ``<policy>.md`` per policy among ``specs`` into ``out_dir`` (writes files);
    ``tests_dir`` None leaves the tests out (see :func:`policy_page`); ``defaults`` maps a
    policy name to its files' qaflow defaults."""
    defaults = defaults or {}
    specs = list(specs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for policy in sorted({s.policy for s in specs}):
        path = out / f"{policy}.md"
        page = policy_page(policy, specs, tests_dir, defaults.get(policy, ()))
        path.write_text(page, encoding="utf-8")
        written.append(path)
    return written
