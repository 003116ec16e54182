"""The escalation builder's routes off the plain ladder: a role-checked consultation before a
bypass, and terminal referral routes besides the main one.

* ``consult``: where a ladder names who is consulted before a bypass (``bypass.consulted``),
  a person in one of those roles records the consultation at the stage; the bypass from that
  stage needs it (a vocabulary guard reading the stage history, not a field the raiser
  fills in). A raise cannot be preceded by a command of its own workflow, so such a ladder
  is raised at its first stage and bypassed from there once consulted.
* ``refer_externally`` with ``route``: each further referral route (``referrals``) has its
  own terminal state ``referred_<name>``, notifying its own role, reached from the last stage
  or, for ``when = "any_time"``, from every stage.
"""

from __future__ import annotations

from qaflow.machines._escalation_parts import REFERRED, _Base, _g, _u
from qaflow.machines._escalation_vocab import RESPONSE_DEADLINE
from qaflow.procedure._parts import ExternalReferral
from qaflow.spec import CloseDeadline, Effect, Field, Guard, Notify, StateSpec, TransitionSpec

__all__ = ["route_state"]


def route_state(route: ExternalReferral) -> str:
    """The terminal state of a referral route besides the main one."""
    return f"{REFERRED}_{route.name}"


class _Routes(_Base):
    """Consultation and referral-route specs; mixed into the escalation builder."""

    def _consult_guard(self) -> Guard:
        ladder = self.ladder
        if ladder.bypass_consulted:
            return _g(
                "a consultation recorded at this stage ('consult') before bypassing",
                "consulted",
                ladder.bypass_clause,
            )
        return Guard(
            "a recorded consultation ('consulted') before bypassing",
            ladder.bypass_clause,
            expr="has(payload.consulted)",
        )

    def _consult(self, level: int, here: tuple[str, ...]) -> list[TransitionSpec]:
        """``consult`` at a stage a bypass may leave, by the roles consulted."""
        ladder = self.ladder
        if not ladder.bypass_consulted or not ladder.bypass_targets(level):
            return []
        return [
            TransitionSpec(
                "consult",
                here,
                None,
                frozenset(ladder.bypass_consulted),
                fields=(self._note(),),
                effects=(
                    _u("consult"),
                    Notify(
                        self.raiser_roles,
                        f"consultation on bypassing {self.label(level)} recorded",
                        ladder.bypass_clause,
                    ),
                ),
                clause=ladder.bypass_clause,
                description="record the consultation a bypass from this stage needs",
            )
        ]

    def _route_states(self) -> list[StateSpec]:
        ladder = self.ladder
        level = ladder.referral_level
        states = []
        for route in ladder.more_referrals:
            effects: list[Effect] = [
                _u("enter", level=level, holders=[route.role], response=None),
                Notify((route.role,), f"escalation referred: {route.label}", route.clause),
            ]
            if route.informed:
                effects.append(
                    Notify(route.informed, f"{route.label} (kept informed)", route.clause)
                )
            effects.append(_u("close", outcome=REFERRED))
            states.append(
                StateSpec(
                    route_state(route),
                    terminal=True,
                    on_enter=tuple(effects),
                    description=route.label,
                )
            )
        return states

    def _route_field(self) -> Field:
        ladder = self.ladder
        assert ladder.referral is not None
        names = (ladder.referral.name, *(r.name for r in ladder.more_referrals))
        return Field("route", "choice", required=False, choices=names)

    def _main_route_guards(self) -> tuple[Guard, ...]:
        """With several routes, the main one is taken when ``route`` is omitted or names it."""
        ladder = self.ladder
        if not ladder.more_referrals or ladder.referral is None:
            return ()
        name = ladder.referral.name
        return (
            Guard(
                f"'route' omitted or {name!r}",
                expr=f'!has(payload.route) || payload.route == "{name}"',
            ),
        )

    def _routes(self, level: int, here: tuple[str, ...]) -> list[TransitionSpec]:
        ladder = self.ladder
        specs = []
        for route in ladder.more_referrals:
            if level != ladder.last_level and route.when != "any_time":
                continue
            specs.append(
                TransitionSpec(
                    "refer_externally",
                    here,
                    route_state(route),
                    frozenset(route.by) or self.raiser,
                    fields=(self._note(), self._route_field()),
                    guards=(
                        Guard(
                            f"'route' is {route.name!r}", expr=f'payload.route == "{route.name}"'
                        ),
                    ),
                    effects=(CloseDeadline(RESPONSE_DEADLINE),),
                    clause=route.any_time_clause if level != ladder.last_level else route.clause,
                    actor_key="raiser_id",
                    description=route.label,
                )
            )
        return specs
