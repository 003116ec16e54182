"""The engine's registry of machine specs: which spec a workflow is pinned to.

Specs are kept by (machine, policy, version); a version pins its rules, so a second spec with
other content under the same key is refused. The last spec registered under a machine name
starts new workflows. Registration also refuses a spec naming an effect type the engine has no
handler for (:func:`qaflow._effects.check_effects`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qaflow._checks import check_id
from qaflow._effects import check_effects
from qaflow.errors import PolicyError, ValidationError, shown
from qaflow.records import WorkflowSnapshot
from qaflow.spec import MachineSpec

__all__ = ["SpecRegistry"]


class _Pinned:
    """The last answer of :meth:`SpecRegistry.pinned`: the snapshot's four pinning texts (the
    very objects it read) and the spec it found for them, after every check passed."""

    __slots__ = ("fingerprint", "machine", "policy", "spec", "version")

    def __init__(
        self, machine: str, policy: str, version: str, fingerprint: str, spec: MachineSpec
    ) -> None:
        self.machine = machine
        self.policy = policy
        self.version = version
        self.fingerprint = fingerprint
        self.spec = spec


class SpecRegistry:
    """The specs one engine runs, by (machine, policy, version) and by machine name."""

    __slots__ = ("_last", "_latest", "_specs")

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str, str], MachineSpec] = {}
        self._latest: dict[str, MachineSpec] = {}
        self._last: _Pinned | None = None

    def register(self, spec: MachineSpec) -> MachineSpec:
        """Make ``spec`` available; raise :class:`PolicyError` for other content under its key."""
        if not isinstance(spec, MachineSpec):
            raise ValidationError(field="spec", value=spec, expected="a MachineSpec")
        known = self._specs.get(spec.key)
        if known is spec:
            self._latest[spec.name] = spec
            return spec
        if known is not None and known.fingerprint != spec.fingerprint:
            raise PolicyError(
                f"machine {spec.name!r} under policy {spec.policy!r} version "
                f"{spec.policy_version!r} is already registered with other content "
                f"(fingerprint {known.fingerprint[:12]}, not {spec.fingerprint[:12]}); "
                "give changed rules a new policy version"
            )
        check_effects(spec)
        self._last = None  # a key may now name another spec object: ask the table again
        self._specs[spec.key] = spec
        self._latest[spec.name] = spec
        return spec

    def ensure(self, spec: MachineSpec) -> MachineSpec:
        """Register ``spec`` unless this very object is already registered under its key."""
        if self._specs.get(spec.key) is not spec:
            self.register(spec)
        return spec

    def latest(self, name: object) -> MachineSpec:
        """The spec new workflows of machine ``name`` start under (any other input is refused
        with a ``PolicyError`` or ``ValidationError``; typed ``object`` so a compiled build
        checks it here too)."""
        check_id("machine", name)
        try:
            return self._latest[str(name)]
        except KeyError:
            raise PolicyError(
                f"no machine {shown(name)} is registered; registered: "
                + (", ".join(map(repr, sorted(self._latest))) or "none")
            ) from None

    def pinned(self, snapshot: WorkflowSnapshot) -> MachineSpec:
        """The spec a workflow is pinned to: its policy, version and fingerprint at start.

        A workflow's commands pin the same spec with the same text objects (the snapshot's
        came from the spec), so the last answer is given again when the snapshot's four
        pinning texts are those very objects: the same texts, the same answer, already checked.
        """
        machine, policy = snapshot.machine, snapshot.policy
        version, pinned = snapshot.policy_version, snapshot.fingerprint
        last = self._last
        if (
            last is not None
            and machine is last.machine
            and policy is last.policy
            and version is last.version
            and pinned is last.fingerprint
        ):
            return last.spec
        spec = self._specs.get((machine, policy, version))
        if spec is None:
            raise PolicyError(
                f"workflow {shown(snapshot.workflow_id)} is pinned to machine "
                f"{shown(snapshot.machine)} under policy {shown(snapshot.policy)} version "
                f"{shown(snapshot.policy_version)}, which is not registered"
            )
        if pinned and pinned != (spec._fingerprint or spec.fingerprint):  # once worked out
            raise PolicyError(
                f"workflow {shown(snapshot.workflow_id)} is pinned to spec fingerprint "
                f"{snapshot.fingerprint[:12]} of {spec.name!r} ({spec.policy!r} version "
                f"{spec.policy_version!r}); the registered one is {spec.fingerprint[:12]}"
            )
        self._last = _Pinned(machine, policy, version, pinned, spec)
        return spec

    def migration_target(
        self, snapshot: WorkflowSnapshot, payload: Mapping[str, Any]
    ) -> MachineSpec:
        """The spec a recorded ``policy_migrated`` event moved the workflow to."""
        key = (snapshot.machine, payload.get("to_policy"), payload.get("to_version"))
        target = self._specs.get(key)  # type: ignore[arg-type]
        if target is None:
            raise PolicyError(
                f"workflow {snapshot.workflow_id!r} cannot move to policy "
                f"{key[1]!r} version {key[2]!r} of {snapshot.machine!r}: not registered"
            )
        return target
