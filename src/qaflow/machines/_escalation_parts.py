"""The escalation builder's shared pieces: named guards and updates, labels and notices, and
the commands a stage offers besides escalating (respond, close, endorse, agree, refer
alongside, extensions, the missed response).

:class:`qaflow.machines.escalation._Builder` extends :class:`_StageCommands`; everything
here returns declarative specs that cite :mod:`qaflow.vocabulary` entries, never closures.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from qaflow.errors import PolicyError
from qaflow.machines._escalation_vocab import ID_MAX as _ID_MAX
from qaflow.machines._escalation_vocab import OVERDUE, RESPONSE_DEADLINE
from qaflow.policies.base import Policy
from qaflow.procedure._ladder import EscalationLadder, ExtensionRule
from qaflow.spec import (
    CloseDeadline,
    Derived,
    Effect,
    Field,
    Guard,
    Notify,
    TransitionSpec,
    Update,
)

__all__ = ["raiser_role", "state_of"]

NEW: Final = "new"
INFORMAL: Final = "informal"
RESOLVED: Final = "resolved"
WITHDRAWN: Final = "withdrawn"
REFERRED: Final = "referred"
TEXT_MAX: Final = 4000
_TEXT_MAX: Final = TEXT_MAX


def state_of(ladder: EscalationLadder, level: int) -> str:
    """The state of a ladder level: 0 ``informal``, k ``stage_k``, N+1 ``referred``."""
    if level == 0 and ladder.informal is not None:
        return INFORMAL
    if 1 <= level <= ladder.last_level:
        return f"stage_{level}"
    if level == ladder.referral_level:
        return REFERRED
    raise PolicyError(f"ladder {ladder.name!r} has no level {level!r}")


def raiser_role(ladder: EscalationLadder) -> tuple[str]:
    """The role notices to the raiser go to: the ladder's raiser role, or ``raiser`` (the
    person recorded as ``raiser_id``) when several roles may raise."""
    return ("raiser",) if ladder.co_raisers else (ladder.raiser,)


def _g(condition: str, use: str, clause: str | None = None, **args: Any) -> Guard:
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in args.items()))
    return _guard(condition, use, clause, frozen)


@functools.lru_cache(maxsize=1024)
def _guard(condition: str, use: str, clause: str | None, args: tuple[Any, ...]) -> Guard:
    """Guards are immutable: one per distinct definition, shared by every machine."""
    return Guard(condition, clause, use=f"escalation.{use}", args=args)


def _u(use: str, **args: Any) -> Update:
    return Update(use=f"escalation.{use}", args=args)


class _Base:
    """What every part of the builder shares: the ladder, who raises, labels and notices."""

    ladder: EscalationLadder
    policy: Policy
    raiser: frozenset[str]
    raiser_roles: tuple[str]
    ext: ExtensionRule
    _people: Guard | None

    def label(self, level: int) -> str:
        ladder = self.ladder
        if level == ladder.referral_level and ladder.referral is not None:
            return ladder.referral.label
        stage = ladder.stage_at(level)
        if level == 0:
            return f"informal stage ({stage.label})"
        return f"stage {level} ({stage.label})"

    def _clause(self, level: int) -> str | None:
        ladder = self.ladder
        if level == ladder.referral_level and ladder.referral is not None:
            return ladder.referral.clause
        return ladder.stage_at(level).clause

    def _entry_notices(self, level: int, what: str) -> tuple[Notify, ...]:
        """Notify the level's holders, then everyone kept informed there, citing clauses."""
        ladder = self.ladder
        notices = [Notify(ladder.holders(level), what, self._clause(level))]
        informed = ladder.informed_at(level)
        wide = tuple(r for r in informed if r in ladder.informed)
        own = tuple(r for r in informed if r not in ladder.informed)
        if wide:
            clause = ladder.informed_clause or self._clause(level)
            notices.append(Notify(wide, f"{what} (kept informed)", clause))
        if own:
            notices.append(Notify(own, f"{what} (kept informed)", self._clause(level)))
        return tuple(notices)

    def _people_guard(self) -> Guard:
        if self._people is not None:
            return self._people
        allowed = sorted(self.ladder.assignable_roles)
        self._people = _g(
            "'people' to map this ladder's roles ("
            + ", ".join(allowed)
            + f") to person ids of at most {_ID_MAX} characters",
            "people",
            allowed=allowed,
        )
        return self._people

    @staticmethod
    def _to_guard(target: str, *, default: bool) -> Guard:
        what = f"'to' omitted or {target!r}" if default else f"'to' is {target!r}"
        return _g(what, "to_is", target=target, default=default)

    def _note(self) -> Field:
        return Field("note", "str", required=False, max_length=_TEXT_MAX)

    def _people_field(self) -> Field:
        return Field("people", "dict", required=False)

    def _consulted(self) -> tuple[Field, ...]:
        if not self.ladder.bypass_consultation:
            return ()
        return (Field("consulted", "str", max_length=_TEXT_MAX),)

    # --- states ---------------------------------------------------------------------------


class _StageCommands(_Base):
    """The commands a stage offers besides moving up (see the module docstring)."""

    def _closing(self, level: int, here: tuple[str, ...]) -> list[TransitionSpec]:
        ladder = self.ladder
        stage = ladder.stage_at(level)
        specs = []
        for trigger, dest, word in (
            ("accept", RESOLVED, "resolved"),
            ("withdraw", WITHDRAWN, "withdrawn"),
        ):
            by = stage.accepted_by if trigger == "accept" else ()
            guards: tuple[Guard, ...] = ()
            if trigger == "accept" and stage.joint:
                guards = (
                    _g(
                        f"agreement recorded by each of {', '.join(stage.joint)}",
                        "all_agreed",
                        stage.clause,
                        roles=list(stage.joint),
                    ),
                )
            specs.append(
                TransitionSpec(
                    trigger,
                    here,
                    dest,
                    frozenset(by) or self.raiser,
                    fields=(self._note(),),
                    guards=guards,
                    effects=self._entry_notices(level, f"escalation {word} at {self.label(level)}"),
                    clause=ladder.close_clause,
                    actor_key=None if by else "raiser_id",
                    description=f"the escalation is closed: {word}",
                )
            )
        return specs

    def _endorse(self, level: int, here: tuple[str, ...]) -> TransitionSpec:
        stage = self.ladder.stage_at(level)
        return TransitionSpec(
            "endorse",
            here,
            None,
            frozenset(stage.endorsed_by),
            fields=(self._note(),),
            guards=(
                _g("no endorsement by this role at this stage yet", "not_endorsed_by_role")
                if stage.endorse_all
                else _g("not endorsed at this stage yet", "not_endorsed"),
            ),
            effects=(
                _u("endorse_role" if stage.endorse_all else "endorse"),
                Notify(
                    self.raiser_roles, f"escalation from {self.label(level)} endorsed", stage.clause
                ),
            ),
            clause=stage.clause,
            description="endorse the escalation to the next stage",
        )

    def _agree(self, level: int, here: tuple[str, ...]) -> TransitionSpec:
        stage = self.ladder.stage_at(level)
        return TransitionSpec(
            "agree",
            here,
            None,
            frozenset(stage.joint),
            fields=(self._note(),),
            guards=(_g("no agreement by this role at this stage yet", "not_yet_agreed_by_role"),),
            effects=(_u("agree"),),
            clause=stage.clause,
            description="record one party's agreement to a joint decision",
        )

    def _tracks(self, here: tuple[str, ...]) -> list[TransitionSpec]:
        """A parallel referral: recorded alongside the stages, which go on (NAT-IRO-04)."""
        specs = []
        for track in self.ladder.tracks:
            specs.append(
                TransitionSpec(
                    "refer",
                    here,
                    None,
                    frozenset(track.by) or self.raiser,
                    fields=(
                        Field("track", "choice", choices=tuple(t.name for t in self.ladder.tracks)),
                        self._note(),
                    ),
                    guards=(
                        Guard(
                            f"'track' is {track.name!r}", expr=f'payload.track == "{track.name}"'
                        ),
                        _g(
                            f"no {track.label} made yet",
                            "track_not_made",
                            track.clause,
                            track=track.name,
                        ),
                    ),
                    effects=(
                        _u("refer_track", track=track.name),
                        Notify((track.role,), track.label, track.clause),
                        *(
                            (
                                Notify(
                                    track.informed, f"{track.label} (kept informed)", track.clause
                                ),
                            )
                            if track.informed
                            else ()
                        ),
                    ),
                    clause=track.clause,
                    actor_key="raiser_id",
                    description=f"{track.label}, alongside the council's stages",
                )
            )
        return specs

    def _respond(self, level: int, here: tuple[str, ...]) -> TransitionSpec:
        stage = self.ladder.stage_at(level)
        return TransitionSpec(
            "respond",
            here,
            None,
            frozenset(stage.holders),
            fields=(Field("response", "str", max_length=_TEXT_MAX),),
            guards=(_g("no response recorded at this stage yet", "no_response_yet", stage.clause),),
            effects=(
                CloseDeadline(RESPONSE_DEADLINE),
                _u("respond"),
                Notify(
                    self.raiser_roles,
                    f"response received at {self.label(level)}: accept, escalate or withdraw",
                    stage.clause,
                ),
            ),
            clause=stage.clause,
            description="the stage holder responds",
        )

    def _overdue(self, level: int, here: tuple[str, ...]) -> TransitionSpec:
        ladder = self.ladder
        stage = ladder.stage_at(level)
        nxt = ladder.next_level(level)
        moves = ladder.breach == "escalate" and nxt is not None
        clause = ladder.breach_clause or stage.clause
        then = "moved up a stage" if moves else "escalate, bypass or grant further time"
        effects: list[Effect] = [
            _u("breach"),
            Notify(self.raiser_roles, f"response overdue at {self.label(level)}: {then}", clause),
            Notify(stage.holders, f"response overdue at {self.label(level)}", stage.clause),
        ]
        if moves:
            effects.append(CloseDeadline(RESPONSE_DEADLINE))
        return TransitionSpec(
            OVERDUE,
            here,
            state_of(ladder, nxt) if moves and nxt is not None else None,
            frozenset(),  # only tick's breach may fire it (the system actor skips role checks)
            guards=(
                _g("the breach names this stage's open response deadline", "breach_names_response"),
            ),
            effects=tuple(effects),
            clause=clause,
            description="the response deadline passed",
        )

    def _extensions(self, level: int, here: tuple[str, ...]) -> list[TransitionSpec]:
        ladder = self.ladder
        ext = self.ext
        stage = ladder.stage_at(level)
        assert ext.max_length is not None
        scope = "at this stage" if ext.per == "stage" else "in this escalation"
        pending = _g("an extension request waiting for a decision", "extension_pending")
        under_limit = _g(
            f"fewer than {ext.max_count} extension(s) granted {scope}",
            "under_extension_limit",
            ext.clause,
            max_count=ext.max_count,
            per=ext.per,
        )
        return [
            TransitionSpec(
                "request_extension",
                here,
                None,
                frozenset(stage.holders),
                fields=(Field("length", "str", max_length=16), self._note()),
                guards=(
                    _g("no other extension request waiting for a decision", "no_extension_pending"),
                    _g("no response recorded at this stage yet", "no_response_yet", stage.clause),
                    under_limit,
                    _g(
                        f"'length' of at most {ext.max_length} (e.g. '{ext.max_length}')",
                        "length_within",
                        ext.clause,
                        key="length",
                        max=str(ext.max_length),
                    ),
                ),
                effects=(
                    _u("request_extension"),
                    Notify(
                        self.raiser_roles,
                        f"further time requested at {self.label(level)}: grant or refuse",
                        ext.clause,
                    ),
                ),
                clause=ext.clause,
                description="the holder asks for further time before the next stage",
            ),
            TransitionSpec(
                "grant_extension",
                here,
                None,
                self.raiser,
                fields=(self._note(),),
                guards=(pending, under_limit),
                effects=(
                    Derived(
                        use="escalation.extend",
                        args={
                            "notify": [*self.raiser_roles, *stage.holders],
                            "clause": ext.clause or stage.clause,
                        },
                    ),
                    _u("grant_extension"),
                    Notify(
                        stage.holders, f"further time granted at {self.label(level)}", ext.clause
                    ),
                ),
                clause=ext.clause,
                actor_key="raiser_id",
                description="the raiser grants the further time asked for",
            ),
            TransitionSpec(
                "refuse_extension",
                here,
                None,
                self.raiser,
                fields=(self._note(),),
                guards=(pending,),
                effects=(
                    _u("refuse_extension"),
                    Notify(
                        stage.holders, f"further time refused at {self.label(level)}", ext.clause
                    ),
                ),
                clause=ext.clause,
                actor_key="raiser_id",
                description="the raiser refuses the further time asked for",
            ),
        ]


def _dedupe(roles: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(roles))
