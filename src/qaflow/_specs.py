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


class SpecRegistry:
    """The specs one engine runs, by (machine, policy, version) and by machine name."""

    __slots__ = ("_latest", "_specs")

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str, str], MachineSpec] = {}
        self._latest: dict[str, MachineSpec] = {}

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
        self._specs[spec.key] = spec
        self._latest[spec.name] = spec
        return spec

    def ensure(self, spec: MachineSpec) -> MachineSpec:
        """Register ``spec`` unless this very object is already registered under its key."""
        if self._specs.get(spec.key) is not spec:
            self.register(spec)
        return spec

    def latest(self, name: str) -> MachineSpec:
        """The spec new workflows of machine ``name`` start under."""
        check_id("machine", name)
        try:
            return self._latest[name]
        except KeyError:
            raise PolicyError(
                f"no machine {shown(name)} is registered; registered: "
                + (", ".join(map(repr, sorted(self._latest))) or "none")
            ) from None

    def pinned(self, snapshot: WorkflowSnapshot) -> MachineSpec:
        """The spec a workflow is pinned to: its policy, version and fingerprint at start."""
        spec = self._specs.get((snapshot.machine, snapshot.policy, snapshot.policy_version))
        if spec is None:
            raise PolicyError(
                f"workflow {shown(snapshot.workflow_id)} is pinned to machine "
                f"{shown(snapshot.machine)} under policy {shown(snapshot.policy)} version "
                f"{shown(snapshot.policy_version)}, which is not registered"
            )
        pinned = snapshot.fingerprint
        if pinned and pinned != (spec._fingerprint or spec.fingerprint):  # once worked out
            raise PolicyError(
                f"workflow {shown(snapshot.workflow_id)} is pinned to spec fingerprint "
                f"{snapshot.fingerprint[:12]} of {spec.name!r} ({spec.policy!r} version "
                f"{spec.policy_version!r}); the registered one is {spec.fingerprint[:12]}"
            )
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
