"""Escalation-path simulation on the real engine, machine and policy, with a virtual clock.

:func:`simulate_escalations` raises ``n`` escalations of one ladder at moments spread over a
period, then plays each one forward: the stage holder responds (or not), the raiser accepts,
escalates, bypasses, grants or refuses further time, withdraws or refers externally, each
with the per-stage probabilities of a :class:`Behaviour`. Every command goes through
:class:`~qaflow.engine.Engine` into a store, so the rules applied are exactly the machine's:
nothing here re-implements them. Unless a store is given, each chunk plays in a
:class:`~qaflow.store.SimulationStore` on an engine in simulation mode (``lean=True``, the
default): every check of a live command runs and state, data and deadlines are computed as
usual, but no event log, hash chain, notification or task rows are kept, none of which the
result reads; ``lean=False`` records everything in a :class:`~qaflow.store.MemoryStore`, with
the same result (tested for every shipped ladder). A store given is always written in full,
so it can be verified and replayed.
Time is a :class:`~qaflow.clock.ManualClock` that only moves forward; a missed response
deadline is found and fired by ``engine.tick`` like in production.

How one stage is played (times are Europe/London local; "day k" is the k-th working day
after the local date the stage was entered):

1. On entering a stage the holder who will act is drawn from the stage's holders. With
   ``respond_probability`` they will respond, on day ``k`` drawn from ``response_days``
   (weighted), at ``reply_at`` (10:00 by default).
2. A response that would come after the response deadline does not come in time. Such a
   holder asks for further time with ``extension_probability`` where the ladder allows one
   (at ``ask_at`` on the deadline's day, for the most the ladder allows); the raiser grants
   it ``answer_after_minutes`` later with ``grant_probability`` or refuses it. A response
   due within the new deadline then comes as planned.
3. Otherwise the deadline passes and ``tick`` fires the breach; the raiser moves on at the
   moment of the breach (see 5). Where the stage has no response deadline (an informal stage
   without a timescale) the raiser waits ``wait_days`` working days instead and moves on at
   ``decide_at``.
4. After a response the raiser decides ``decision_days`` working days later at ``decide_at``: accept
   (resolved) with ``accept_probability``, else move on.
5. Moving on: withdraw with ``withdraw_probability``; bypass with ``bypass_probability`` (to
   a later stage or the external referral drawn uniformly from those the ladder allows);
   otherwise escalate to the next stage; at the last stage, refer externally where the
   ladder has a referral, else the escalation ends resolved at the top.

A ladder whose breach moves the escalation up by itself (``breach = "escalate"``) is followed:
the path simply enters the next stage. The same ``seed`` gives the same result exactly,
whatever ``workers`` is: paths are played in fixed chunks of :data:`CHUNK`, one
:class:`random.Random` seeded from the seed and the chunk drives every draw of a chunk, and
actions run in time order with ties broken by scheduling order.

The result, :class:`EscalationSimulation`, holds one :class:`EscalationPath` per escalation
(unless ``keep_paths=False``) and an :class:`EscalationSummary`, tallied as paths end;
:meth:`EscalationSimulation.to_json` and
:meth:`EscalationSimulation.to_text` render it.

The play itself, shared with the audit programme's escalations, lives in :mod:`qaflow.sim`
(one scheduler, one set of actors); this module is the public entry point.
"""

from qaflow.sim import (
    CHUNK,
    DEFAULT_START,
    OUTCOMES,
    SIMULATION_POLICY,
    Behaviour,
    EscalationPath,
    EscalationSimulation,
    EscalationSummary,
    Percentiles,
    StageBehaviour,
    Tally,
    format_summary,
    percentile,
    simulate_escalations,
)

__all__ = [
    "CHUNK",
    "DEFAULT_START",
    "OUTCOMES",
    "SIMULATION_POLICY",
    "Behaviour",
    "EscalationPath",
    "EscalationSimulation",
    "EscalationSummary",
    "Percentiles",
    "StageBehaviour",
    "Tally",
    "format_summary",
    "percentile",
    "simulate_escalations",
]
