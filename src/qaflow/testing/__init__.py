"""Conformance checks and hypothesis strategies for any qaflow machine or policy.

The project's own tests use exactly these, and a council that writes its own policy runs the
same checks on it. Each ``check_*`` function raises ``AssertionError`` naming the workflow
that breaks the rule it checks and what it found.

- the workflow checks every machine passes (sequence, replay, deadlines, tick, round trip,
  tamper detection): ``_workflow``;
- escalation ladders (BX-ESC-*, NAT-CP-*, NAT-IRO-*): strategies in ``_ladder_draw``, the
  ladder's own rules in ``_ladder_checks``, the stateful test and :func:`check_ladder` in
  ``_ladder_machine``;
- rolling deadlines and the timescale machines: ``_rolling``;
- audit and moderation procedures: :func:`check_audit_procedure` runs the audit conformance
  suite on any procedure file a council writes (``qaflow._audit_conformance``), with
  strategies for the later commands' payloads (``qaflow._audit_draw``: feedback sets, the
  sufficiency and supervision reviews, the arranged meeting).

Importing this package needs ``hypothesis`` (the ``test`` extra).
"""

from qaflow._audit_conformance import (
    AuditProcedureMachine,
    audit_state_machine,
    check_audit_procedure,
)
from qaflow._audit_draw import (
    feedback_payloads,
    meeting_payloads,
    sufficiency_payloads,
    supervision_payloads,
    whole_feedback,
)
from qaflow.testing._ladder_checks import (
    apply_command,
    check_escalation,
    check_ladder_spec,
    expected_recipients,
    run_commands,
)
from qaflow.testing._ladder_draw import (
    CONFORMANCE_POLICY,
    LadderCommand,
    clock_starts,
    clocks,
    command_sequences,
    ladder_commands,
    ladders,
    raise_commands,
    waits,
)
from qaflow.testing._ladder_machine import (
    EscalationLadderMachine,
    check_ladder,
    ladder_state_machine,
)
from qaflow.testing._rolling import (
    TimescaleStateMachine,
    check_rolling,
    check_timescales,
    event_bindings,
    payloads,
    timescale_state_machine,
)
from qaflow.testing._workflow import (
    aware_datetimes,
    check_deadlines,
    check_integrity_detects_tampering,
    check_record_round_trip,
    check_replay,
    check_sequence,
    check_terminal_absorbing,
    check_tick,
    check_workflow,
    store_content,
)

__all__ = [
    "CONFORMANCE_POLICY",
    "AuditProcedureMachine",
    "EscalationLadderMachine",
    "LadderCommand",
    "TimescaleStateMachine",
    "apply_command",
    "audit_state_machine",
    "aware_datetimes",
    "check_audit_procedure",
    "check_deadlines",
    "check_escalation",
    "check_integrity_detects_tampering",
    "check_ladder",
    "check_ladder_spec",
    "check_record_round_trip",
    "check_replay",
    "check_rolling",
    "check_sequence",
    "check_terminal_absorbing",
    "check_tick",
    "check_timescales",
    "check_workflow",
    "clock_starts",
    "clocks",
    "command_sequences",
    "event_bindings",
    "expected_recipients",
    "feedback_payloads",
    "ladder_commands",
    "ladder_state_machine",
    "ladders",
    "meeting_payloads",
    "payloads",
    "raise_commands",
    "run_commands",
    "store_content",
    "sufficiency_payloads",
    "supervision_payloads",
    "timescale_state_machine",
    "waits",
    "whole_feedback",
]
