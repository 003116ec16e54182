"""A tiny document-review procedure: the smallest machine that exercises the whole engine.

A worker submits a document; a manager must review it within 5 working days. They approve,
or send it back with a reason. If the 5 WD pass, the review escalates to the service
manager, who has 24 h. The requester may withdraw at any point before a decision.
"""

from __future__ import annotations

from qaflow import (
    AddTask,
    DeadlineRule,
    Field,
    Guard,
    MachineSpec,
    Notify,
    StateSpec,
    TransitionSpec,
    Update,
)

OPEN = ("submitted", "escalated", "returned")


def review_spec(review_days: str = "5 WD") -> MachineSpec:
    """Build the review machine; ``review_days`` is its one policy value."""
    return MachineSpec(
        name="example.review",
        policy="example",
        migration_roles=frozenset({"manager"}),
        policy_version="1",
        initial="new",
        states=(
            StateSpec("new"),
            StateSpec(
                "submitted",
                deadlines=(
                    DeadlineRule(
                        "review",
                        review_days,
                        breach_trigger="escalate",
                        notify=("manager",),
                        clause="EX-01",
                    ),
                ),
                on_enter=(Notify(("manager",), "document to review", "EX-01"),),
            ),
            StateSpec(
                "escalated",
                deadlines=(
                    DeadlineRule(
                        "senior_review", "24 h", notify=("service_manager",), clause="EX-02"
                    ),
                ),
                on_enter=(Notify(("service_manager",), "review overdue", "EX-02"),),
            ),
            StateSpec("returned"),
            StateSpec("approved", terminal=True),
            StateSpec("withdrawn", terminal=True),
        ),
        transitions=(
            TransitionSpec(
                "submit",
                ("new", "returned"),
                "submitted",
                frozenset({"worker"}),
                fields=(Field("document_ref"),),
                effects=(
                    Update(
                        lambda c: {
                            "worker_id": c.actor.id,
                            "document_ref": c.payload["document_ref"],
                        }
                    ),
                ),
            ),
            TransitionSpec(
                "escalate", ("submitted",), "escalated", frozenset({"worker"}), clause="EX-02"
            ),
            TransitionSpec(
                "approve",
                ("submitted", "escalated"),
                "approved",
                frozenset({"manager", "service_manager"}),
                fields=(Field("score", "int", min=0, max=10),),
                guards=(
                    Guard("a score of at least 6", lambda c: c.payload["score"] >= 6, "EX-03"),
                ),
                effects=(
                    Update(lambda c: {"score": c.payload["score"]}),
                    Notify(("worker",), "document approved", "EX-03"),
                ),
            ),
            TransitionSpec(
                "send_back",
                ("submitted", "escalated"),
                "returned",
                frozenset({"manager", "service_manager"}),
                fields=(Field("reason"),),
                effects=(AddTask("revise document", "worker", "2 WD", "EX-04"),),
            ),
            TransitionSpec(
                "withdraw", OPEN, "withdrawn", frozenset({"worker"}), actor_key="worker_id"
            ),
            TransitionSpec(
                "comment",
                OPEN,
                None,
                frozenset({"worker", "manager", "service_manager"}),
                fields=(Field("text", max_length=2000),),
            ),
        ),
    )
