"""The audit's side of moderation: the write-back transitions and closing after the window
(BX-MOD-01, BX-MOD-05)."""

from __future__ import annotations

from qaflow.machines._audit_parts import _not_under_moderation
from qaflow.machines._audit_states import (
    CLOSED,
)
from qaflow.machines._audit_vocabulary import record as _record
from qaflow.procedure import (
    MODERATOR,
    AuditPolicy,
    Grade,
)
from qaflow.spec import (
    Field,
    Guard,
    TransitionSpec,
    Update,
)


def _moderation_transitions(
    policy: AuditPolicy, rest: tuple[str, ...], final: str
) -> list[TransitionSpec]:
    clause = policy.moderation_clause

    window = {"within": policy.moderation_window}
    start_guards = (
        Guard("no other moderation in progress", clause, expr="data.moderation_open != true"),
        Guard("an audit not yet moderated", clause, expr="data.moderated != true"),
        Guard(
            f"an audit completed within the last {policy.moderation_window}",
            clause,
            use="audit.within_moderation_window",
            args=window,
        ),
    )
    in_progress = Guard("a moderation in progress", clause, expr="data.moderation_open == true")

    matches = Guard(
        "the id of the moderation in progress", clause, use="audit.moderation_id_matches"
    )
    moderated_fields = (
        Field("moderation_id", "str", max_length=200),
        Field("moderator_id", "str", max_length=200),
        Field("grade", "choice", choices=tuple(g.name for g in Grade)),
        Field("agreed", "bool"),
    )
    moderated_guards = (
        in_progress,
        matches,
        Guard(
            "a moderator who is not the audit's auditor",
            clause,
            expr="payload.moderator_id != data.auditor_id",
        ),
        Guard("the allocated moderator, named in the payload", clause, use="audit.named_moderator"),
    )
    window_over = Guard(
        "the moderation window is over", use="audit.moderation_window_over", args=window
    )
    return [
        TransitionSpec(
            "moderation_started",
            rest,
            None,
            frozenset(policy.qa_roles),
            fields=(Field("moderation_id", "str", max_length=200),),
            guards=start_guards,
            effects=(
                _record(
                    values={"moderation_open": True}, payload={"moderation_id": "moderation_id"}
                ),
            ),
            clause=clause,
            description="Written by the moderation code: this audit was sampled.",
        ),
        # Several specs share "moderated" in the final state: the first whose guards pass
        # is taken. After the moderation window the write-back also closes the audit.
        TransitionSpec(
            "moderated",
            (final,),
            CLOSED,
            frozenset({MODERATOR}),
            fields=moderated_fields,
            guards=(*moderated_guards, window_over),
            effects=(Update(use="audit.moderated"),),
            clause="BX-MOD-05",
            description="Written by the moderation code: the agreed grade; closes late ones.",
        ),
        TransitionSpec(
            "moderated",
            rest,
            None,
            frozenset({MODERATOR}),
            fields=moderated_fields,
            guards=moderated_guards,
            effects=(Update(use="audit.moderated"),),
            clause="BX-MOD-05",
            description="Written by the moderation code: the agreed grade (both kept).",
        ),
        TransitionSpec(
            "moderation_cancelled",
            rest,
            None,
            frozenset(policy.qa_roles),
            fields=(Field("moderation_id", "str", max_length=200),),
            guards=(in_progress, matches),
            effects=(_record(values={"moderation_open": False, "moderation_id": None}),),
            clause=clause,
            description="Written by the moderation code: the moderation was cancelled.",
        ),
        TransitionSpec(
            "close",
            (final,),
            CLOSED,
            frozenset(policy.qa_roles),
            guards=(_not_under_moderation(policy),),
            clause=clause,
            description="The moderation window has passed (fired by tick), or QA closes it.",
        ),
    ]
