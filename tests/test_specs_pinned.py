"""The registry answers ``pinned`` again from its last answer only for the very same texts.

:meth:`qaflow._specs.SpecRegistry.pinned` remembers its last answer with the four texts it
read (machine, policy, version, fingerprint) and gives it again when a snapshot carries those
very objects. These tests check it never answers for anything else: equal texts in other
objects go through the table (same answer), a changed fingerprint or an unregistered policy is
refused after a remembered answer as before, and registering again forgets it.
"""

from __future__ import annotations

import attrs
import pytest

from qaflow._specs import SpecRegistry
from qaflow.errors import PolicyError
from qaflow.records import WorkflowSnapshot
from qaflow.spec import MachineSpec
from review_machine import review_spec


def _snapshot(spec: MachineSpec, **changes: str) -> WorkflowSnapshot:
    snap = WorkflowSnapshot(
        "W-1", spec.name, spec.policy, spec.policy_version, spec.initial,
        fingerprint=spec.fingerprint,
    )  # fmt: skip
    return attrs.evolve(snap, **changes)


def _copy(text: str) -> str:
    """An equal text in another object."""
    return "".join(list(text))


def test_the_same_texts_give_the_same_spec_and_equal_texts_too() -> None:
    spec = review_spec()
    registry = SpecRegistry()
    registry.register(spec)
    snap = _snapshot(spec)
    assert registry.pinned(snap) is spec
    assert registry.pinned(snap) is spec  # from the remembered answer
    equal = _snapshot(
        spec,
        machine=_copy(spec.name),
        policy=_copy(spec.policy),
        policy_version=_copy(spec.policy_version),
        fingerprint=_copy(spec.fingerprint),
    )
    assert equal.machine is not spec.name
    assert registry.pinned(equal) is spec


def test_a_refusal_stands_after_a_remembered_answer() -> None:
    spec = review_spec()
    registry = SpecRegistry()
    registry.register(spec)
    assert registry.pinned(_snapshot(spec)) is spec
    with pytest.raises(PolicyError, match="fingerprint"):
        registry.pinned(_snapshot(spec, fingerprint="0" * 64))
    with pytest.raises(PolicyError, match="not registered"):
        registry.pinned(_snapshot(spec, policy_version=spec.policy_version + "-other"))
    with pytest.raises(PolicyError, match="not registered"):
        registry.pinned(_snapshot(spec, machine=spec.name + "-other"))
    assert registry.pinned(_snapshot(spec)) is spec  # and the good one still answers


def test_registering_again_forgets_the_remembered_answer() -> None:
    first, second = review_spec(), review_spec()
    assert first is not second and first.fingerprint == second.fingerprint
    registry = SpecRegistry()
    registry.register(first)
    snap = _snapshot(first)
    assert registry.pinned(snap) is first
    registry.register(second)  # the same rules under the same key: the table now holds it
    assert registry.pinned(snap) is second
