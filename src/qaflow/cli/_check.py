"""``qaflow policy check FILE``: load a council's procedure file, build it, run the conformance kit.

Reads only. A file that does not load prints every problem (file, key path, what was found,
what is accepted) and exits 1; one that loads is built into its machines, each checked by
the conformance suite of :mod:`qaflow.testing` (hypothesis stateful tests on the real
engine), and a summary is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from qaflow.cli._common import fail_cleanly
from qaflow.cli._policy import policy
from qaflow.errors import PolicyError, ValidationError

__all__ = ["check_file", "file_specs", "is_audit_file", "is_roles_file", "load_file"]


def is_audit_file(path: str) -> bool:
    """Whether ``path`` holds an audit-and-moderation procedure (``[form]``/``[audit]``)
    rather than escalation ladders (``[[ladders]]``)."""
    import tomllib

    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # the escalation loader reports the problem with its usual message
    return "ladders" not in doc and ("form" in doc or "audit" in doc)


def is_roles_file(path: str) -> bool:
    """Whether ``path`` holds a council's roles file (``[roles]`` and no ``[policy]``)."""
    import tomllib

    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return "roles" in doc and "policy" not in doc


def load_file(path: str) -> object:
    """The procedure file at ``path`` (a :class:`~qaflow.procedure.ProcedureFile`)."""
    from qaflow.procedure import load_procedure

    if not Path(path).is_file():
        raise ValidationError(field="FILE", value=path, expected="an existing procedure file")
    return load_procedure(path)


def file_specs(path: str) -> list[object]:
    """The machine specs of every procedure in the file at ``path``."""
    from qaflow.machines.escalation import escalation_machine
    from qaflow.procedure import ProcedureFile

    if Path(path).is_file() and is_audit_file(path):
        from qaflow.machines.audit import audit_spec
        from qaflow.machines.moderation import moderation_spec
        from qaflow.procedure import load_audit_procedure

        audit, moderation = load_audit_procedure(path)
        return [audit_spec(audit), moderation_spec(moderation)]
    book = load_file(path)
    assert isinstance(book, ProcedureFile)
    return [escalation_machine(ladder, book.policy) for ladder in book.ladders]


def check_file(path: str, *, examples: int, steps: int) -> list[str]:
    """Load, build and conformance-check every procedure in ``path``; the summary lines.

    Raises :class:`PolicyError` listing every problem if the file does not load, or naming
    the ladder whose machine breaks an invariant.
    """
    from qaflow.machines.escalation import escalation_machine
    from qaflow.procedure import ProcedureFile

    if Path(path).is_file() and is_audit_file(path):
        return _check_audit_file(path, examples=examples, steps=steps)
    if Path(path).is_file() and is_roles_file(path):
        from qaflow.procedure import load_roles

        roles = load_roles(path)
        return [f"{path}: roles file, {len(roles)} role(s): {', '.join(sorted(roles))}"]
    check_ladder: Callable[..., None] | None
    try:
        from qaflow.testing import check_ladder
    except ImportError:  # the conformance kit needs hypothesis (pip install "qaflow[test]")
        check_ladder = None

    book = load_file(path)
    assert isinstance(book, ProcedureFile)
    lines = [
        f"{path}: policy {book.policy.name!r} version {book.policy.version!r}, "
        f"{len(book.roles)} role(s), {len(book.ladders)} ladder(s)"
    ]
    if book.cites:
        lines.append(f"  written from {book.cites}")
    for ladder in book.ladders:
        spec = escalation_machine(ladder, book.policy)
        if check_ladder is None:
            lines.append(
                f"  {ladder.name}: {len(ladder.levels)} stage(s), {len(spec.states)} states; "
                "loads and builds; conformance kit not run (pip install 'qaflow[test]')"
            )
            continue
        try:
            check_ladder(ladder, book.policy, max_examples=examples, stateful_step_count=steps)
        except AssertionError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else "failed"
            raise PolicyError(
                source=path,
                path=f"ladders[{book.ladders.index(ladder)}]",
                value=ladder.name,
                expected=f"a ladder whose machine keeps the invariants ({first})",
            ) from None
        clauses = sorted({t.clause for t in spec.transitions if t.clause})
        lines.append(
            f"  {ladder.name}: {len(ladder.levels)} stage(s), {len(spec.states)} states, "
            f"{len(spec.transitions)} commands, clauses {', '.join(clauses) or 'none'}; "
            f"conformance ok; fingerprint {spec.fingerprint[:12]}"
        )
    return lines


def _check_audit_file(path: str, *, examples: int, steps: int) -> list[str]:
    """An audit-and-moderation file: load it, build both machines, run the audit kit."""
    from qaflow.machines.audit import audit_spec
    from qaflow.machines.moderation import moderation_spec
    from qaflow.procedure import load_audit_procedure

    procedure = load_audit_procedure(path)
    audit, moderation = procedure
    lines = [
        f"{path}: policy {audit.name!r} version {audit.version!r}, audit form "
        f"{audit.form.name!r} ({len(audit.form.questions)} questions, grades "
        f"{', '.join(g.label for g in sorted(audit.form.grades))})"
    ]
    check: Callable[..., None] | None
    try:
        from qaflow.testing import check_audit_procedure as check
    except ImportError:  # the conformance kit needs hypothesis (pip install "qaflow[test]")
        check = None
    if check is not None:
        try:
            check(procedure, max_examples=examples, stateful_step_count=steps)
        except AssertionError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else "failed"
            raise PolicyError(
                source=path,
                path="audit",
                value=audit.name,
                expected=f"an audit whose machine keeps the invariants ({first})",
            ) from None
    for spec in (audit_spec(audit), moderation_spec(moderation)):
        clauses = sorted({t.clause for t in spec.transitions if t.clause})
        done = "conformance ok" if check is not None and spec.name == "audit" else "builds"
        lines.append(
            f"  {spec.name}: {len(spec.states)} states, {len(spec.transitions)} commands, "
            f"clauses {', '.join(clauses) or 'none'}; {done}; {spec.fingerprint[:19]}"
        )
    return lines


@policy.command("check", short_help="Load, build and conformance-check a file.")
@click.argument("file")
@click.option(
    "--examples",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    help="Hypothesis examples per ladder.",
)
@click.option(
    "--steps",
    type=click.IntRange(1, 1000),
    default=25,
    show_default=True,
    help="Commands per example.",
)
@fail_cleanly
def policy_check(file: str, examples: int, steps: int) -> None:
    """Load a procedure FILE, build its machines and run the conformance kit (reads only)."""
    for line in check_file(file, examples=examples, steps=steps):
        click.echo(line)


@policy.command("schema", short_help="A procedure file kind's JSON Schema.")
@click.argument(
    "kind",
    type=click.Choice(["escalation", "audit", "roles"]),
    default="escalation",
    required=False,
)
def policy_schema(kind: str) -> None:
    """Print the JSON Schema of a procedure file KIND: escalation (default), audit or roles
    (reads only)."""
    import json

    from qaflow.procedure import json_schema

    click.echo(json.dumps(json_schema(kind), indent=2))
