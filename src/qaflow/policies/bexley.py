"""Policy of a Signs of Safety council (clause prefix BX): pure, frozen data.

Every definition cites the clause it encodes (:mod:`qaflow.policies.clauses` lists them);
the tests that enforce a clause name it, so ``grep -r BX-AUD-07`` finds both. The
collaborative case audit and its moderation are the procedure file ``bexley/audit.toml``,
read by the same loader as any council's file; the names below are read from it for the
code and tests that use them.
Durations are plain strings (``"5 WD"``, ``"24 h"``) that :class:`qaflow.calendar.Duration`
parses; role names are the ones a host's directory resolves to people.
"""

from __future__ import annotations

from typing import Final

from qaflow.policies._catalogue import shipped_audit_procedure
from qaflow.procedure._grading import Grade

# --- Collaborative case audit and moderation (BX framework §1.1-1.3, Appendix a: audit.toml) ---

BEXLEY_AUDIT: Final = shipped_audit_procedure("bexley").audit
"""Bexley's collaborative case audit (BX framework §1.1-1.3, Appendix a)."""
BEXLEY_MODERATION: Final = shipped_audit_procedure("bexley").moderation
"""Bexley's moderation (BX framework §1.3, Fig 1.4)."""

#: Appendix a: the collaborative case audit form, and its 0-10 grade bands (BX-AUD-06).
AUDIT_FORM: Final = BEXLEY_AUDIT.form
assert AUDIT_FORM.grade_bands is not None  # audit.toml grades a 0-10 score through bands
GRADE_BANDS: Final = AUDIT_FORM.grade_bands
#: The question whose answer is the audit's overall grade (BX-AUD-06).
GRADING_QUESTION: Final = AUDIT_FORM.grading_question
#: Ids of the nine family feedback statements, in form order (BX-AUD-07, form §5).
FAMILY_STATEMENT_IDS: Final = BEXLEY_AUDIT.feedback.questions if BEXLEY_AUDIT.feedback else ()
#: BX-AUD-12: who is notified of an Inadequate audit.
INADEQUATE_NOTIFY_ROLES: Final = tuple(
    role for rule in BEXLEY_AUDIT.rules_for(Grade.INADEQUATE) for role in rule.notify
)
#: BX-MOD-01: who PSQA may allocate a moderation to (never the audit's own auditor).
MODERATOR_ROLES: Final = BEXLEY_MODERATION.moderator_roles


# --- Escalations (BX framework §5.3; qaflow's default ladders) ---
# Written as a procedure file (bexley/escalation.toml, clause IDs on every entry) and loaded
# by the same loader as any council's file; the names below are bound to the loaded ladders.
# The import sits here so the section stays self-contained (ruff E402 silenced for that only).
from importlib.resources import files  # noqa: E402

from qaflow.policies.base import Policy  # noqa: E402
from qaflow.procedure._toml import ProcedureFile, loads_procedure  # noqa: E402

_ESCALATION_FILE: Final = files("qaflow.policies").joinpath("bexley", "escalation.toml")

#: Bexley's escalation procedures as loaded from ``policies/bexley/escalation.toml``.
ESCALATIONS: Final[ProcedureFile] = loads_procedure(
    _ESCALATION_FILE.read_text(encoding="utf-8"),
    source="qaflow/policies/bexley/escalation.toml",
    base=files("qaflow.policies").joinpath("bexley"),
)

#: The name and version every workflow of this policy pins, so a later version never changes
#: a running workflow: escalations here, audits and moderations in audit.toml.
POLICY: Final = Policy("bexley", "1", migration_roles=("head_of_service",))
if ESCALATIONS.policy != POLICY:  # pragma: no cover - a shipped file that drifted
    raise RuntimeError("bexley/escalation.toml pins another policy than bexley.POLICY")

CP_CHAIR_REASONS: Final = ESCALATIONS.ladder("bexley_cp_chair").reasons
CP_CHAIR_LADDER: Final = ESCALATIONS.ladder("bexley_cp_chair")
IRO_REASONS: Final = ESCALATIONS.ladder("bexley_iro").reasons
IRO_LADDER: Final = ESCALATIONS.ladder("bexley_iro")
FIRO_REASONS: Final = ESCALATIONS.ladder("bexley_firo").reasons
FIRO_LADDER: Final = ESCALATIONS.ladder("bexley_firo")

#: The three default escalation ladders (BX §5.3; qaflow's defaults).
ESCALATION_LADDERS: Final = (CP_CHAIR_LADDER, IRO_LADDER, FIRO_LADDER)
