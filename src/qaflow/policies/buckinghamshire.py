"""Policy of a Strengthening Families council (clause prefix BK): pure, frozen data.

Every definition cites the clause it encodes (:mod:`qaflow.policies.clauses` lists them);
the tests that enforce a clause name it. The case file audit and its moderation are the
procedure file ``buckinghamshire/audit.toml``, read by the same loader as any council's
file; the names below are read from it for the code and tests that use them.
"""

from __future__ import annotations

from typing import Final

from qaflow.policies._catalogue import shipped_audit_procedure

# --- Case file audit and moderation (BK framework App. 1-2: audit.toml) ---

BUCKINGHAMSHIRE_AUDIT: Final = shipped_audit_procedure("buckinghamshire").audit
"""Buckinghamshire's case file audit (BK framework App. 1-2)."""
BUCKINGHAMSHIRE_MODERATION: Final = shipped_audit_procedure("buckinghamshire").moderation
"""Buckinghamshire's moderation (BK framework App. 2): only the sample is specified."""

#: The name and version every workflow of this policy pins, so a later version never changes
#: a running workflow.
POLICY: Final = BUCKINGHAMSHIRE_AUDIT.policy

#: App. 1: the generic audit tool, and how its judgements map to grades (BK-AUD-01).
AUDIT_FORM: Final = BUCKINGHAMSHIRE_AUDIT.form
assert AUDIT_FORM.judgement_scale is not None  # audit.toml grades by three-level judgements
JUDGEMENT_SCALE: Final = AUDIT_FORM.judgement_scale
GRADING_QUESTION: Final = AUDIT_FORM.grading_question
#: Ids of the judged practice fields, in form order (BK-AUD-01).
FIELD_IDS: Final = tuple(q.id for q in AUDIT_FORM.section("fields").questions)
