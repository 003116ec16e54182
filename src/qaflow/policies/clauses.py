# ruff: noqa: E501, RUF001 -- rule texts are kept verbatim from the policy catalogue
"""The clause catalogue: every rule qaflow encodes, by clause ID, in plain words.

Taken from the two councils' frameworks (BX: a Signs of Safety council; BK: a Strengthening
Families council) and, where a framework only names a procedure, from the statutory guidance it
cites (NAT). Policy modules cite these IDs; ``qaflow policy docs`` prints them beside the values
a policy holds and the tests that enforce each one.
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["CLAUSES", "Clause", "clause"]


@attrs.frozen
class Clause:
    """One rule: its ID, the part of the framework it belongs to, and the rule itself."""

    id: str
    topic: str
    rule: str


CLAUSES: Final[dict[str, Clause]] = {
    "BX-AUD-01": Clause(
        "BX-AUD-01",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Business support allocates each audit: auditor, child, allocated worker, and the Staying Together worker where there is one. The auditor audits a child from another team than their own. Managers can see which of their team's files are being audited and by whom.",
    ),
    "BX-AUD-02": Clause(
        "BX-AUD-02",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "The auditor books a meeting with the practitioner (and Staying Together worker) and asks for the self-assessment to be done before the meeting.",
    ),
    "BX-AUD-03": Clause(
        "BX-AUD-03",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        'Self-assessment (form §2): two 0–10 scales — difference made (0 none, 10 significant) and use of Signs of Safety (0 never, 10 always) — each with "what worked well" and "what would move it up".',
    ),
    "BX-AUD-04": Clause(
        "BX-AUD-04",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Case-file health check (form §3, Q1–Q5): auditor rating 0–10 with strengths and areas to develop, done before meeting the practitioner.",
    ),
    "BX-AUD-05": Clause(
        "BX-AUD-05",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Areas of practice (form §4, Q6–Q18) are completed with the practitioner: signs of impact (evidence with a reference to where it is on the file), a collaborative 0–10 scale, strengths, areas to develop, auditor rationale. Q19 (management oversight) is an auditor rating 0–10.",
    ),
    "BX-AUD-06": Clause(
        "BX-AUD-06",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Overall grading on 0–10 tied to Ofsted grades: 0–2 Inadequate, 3–5 Requires improvement, 6 Good; Outstanding when Good is reached and surpassed (qaflow default: 7–10). The auditor records a rationale.",
    ),
    "BX-AUD-07": Clause(
        "BX-AUD-07",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Feedback must be sought from the family, and from the child where of age and understanding and the parent/carer agrees, and where possible from a member of the family or professional network. Family feedback is nine statements scored 0–10 (form §5). If feedback could not be obtained, the reason is recorded.",
    ),
    "BX-AUD-08": Clause(
        "BX-AUD-08",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Actions are always recorded, even when Good (action, who, when). Below Good, the immediate actions needed to reach Good must be recorded.",
    ),
    "BX-AUD-09": Clause(
        "BX-AUD-09",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "The auditor follows up with the manager within 5 WD of completion and case-notes what action has been taken.",
    ),
    "BX-AUD-10": Clause(
        "BX-AUD-10",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Manager and practitioner review the audit in supervision; a management oversight note records the discussion and action timeframes; actions are reviewed at the next supervision.",
    ),
    "BX-AUD-11": Clause(
        "BX-AUD-11",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "A practice observation is required when the audit is part of Practice Week, and is added as an action when the audit is graded Inadequate.",
    ),
    "BX-AUD-12": Clause(
        "BX-AUD-12",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Inadequate: the auditor notifies the worker, team manager, service manager, head of service and assistant director (deputy director in the form) and PSQA; immediate tasks are actioned within 24 h; a management oversight note records case direction and tasks.",
    ),
    "BX-AUD-13": Clause(
        "BX-AUD-13",
        "Collaborative case audit — BX (framework §1.1–1.3, Appendix a)",
        "Every manager completes one collaborative audit a month; practitioners self-assess monthly.",
    ),
    "BX-MOD-01": Clause(
        "BX-MOD-01",
        "Moderation — BX (framework §1.3 Fig 1.4)",
        "The moderation list is drawn from cases audited in the last 6 months; PSQA allocates each to a moderator (consultant social worker, CP chair, IRO, service manager, head of service, deputy director). A moderator never moderates their own audit.",
    ),
    "BX-MOD-02": Clause(
        "BX-MOD-02",
        "Moderation — BX (framework §1.3 Fig 1.4)",
        "A moderation records scaling and comments on good practice and areas for development.",
    ),
    "BX-MOD-03": Clause(
        "BX-MOD-03",
        "Moderation — BX (framework §1.3 Fig 1.4)",
        "The moderator records whether the audit's actions were completed, and adds actions with timescales.",
    ),
    "BX-MOD-04": Clause(
        "BX-MOD-04",
        "Moderation — BX (framework §1.3 Fig 1.4)",
        "The moderator records agreement or disagreement. Agreement finalises the audit, a management oversight note is recorded, and worker and manager are notified.",
    ),
    "BX-MOD-05": Clause(
        "BX-MOD-05",
        "Moderation — BX (framework §1.3 Fig 1.4)",
        "Disagreement: moderator and auditor meet and agree a grading; the agreed grade replaces the audit's grade, with both grades kept in the history.",
    ),
    "BX-MOD-06": Clause(
        "BX-MOD-06",
        "Moderation — BX (framework §1.3 Fig 1.4)",
        "If the case remains Inadequate or actions are outstanding: worker, team manager and service manager are notified and tasks are actioned within 24 h; the head of service for PSQA is told of every moderation graded Inadequate.",
    ),
    "BK-AUD-01": Clause(
        "BK-AUD-01",
        "Audit and moderation — BK (framework App. 1–2)",
        "Twelve fields, each judged *Exceeds good / Meets good / Does not meet good* with evidence and impact text, then an overall grading and agreed actions (by whom, by when).",
    ),
    "BK-AUD-02": Clause(
        "BK-AUD-02",
        "Audit and moderation — BK (framework App. 1–2)",
        "The auditor has 3 weeks from allocation to complete the audit.",
    ),
    "BK-AUD-03": Clause(
        "BK-AUD-03",
        "Audit and moderation — BK (framework App. 1–2)",
        "The audit looks back 6 months by default; the auditor may look further.",
    ),
    "BK-AUD-04": Clause(
        "BK-AUD-04",
        "Audit and moderation — BK (framework App. 1–2)",
        "A serious safeguarding issue found in an audit is escalated to senior managers immediately.",
    ),
    "BK-AUD-05": Clause(
        "BK-AUD-05",
        "Audit and moderation — BK (framework App. 1–2)",
        "Where an audit is not at least Good, managers make sure corrective action is taken on that case.",
    ),
    "BK-AUD-06": Clause(
        "BK-AUD-06",
        "Audit and moderation — BK (framework App. 1–2)",
        "The completed audit goes on the child's file and the manager records management oversight of how the actions will be monitored.",
    ),
    "BK-MOD-01": Clause(
        "BK-MOD-01",
        "Audit and moderation — BK (framework App. 1–2)",
        "A sample of each month's audits is moderated.",
    ),
    "BX-ESC-CP-01": Clause(
        "BX-ESC-CP-01",
        "Escalations — CP conference chair (BX §5.3; stages per national guidance, qaflow's default)",
        "A chair who finds expected practice not delivered, or has safeguarding concerns, first discusses them with the social worker and their manager (informal stage, recorded on the child's file).",
    ),
    "BX-ESC-CP-02": Clause(
        "BX-ESC-CP-02",
        "Escalations — CP conference chair (BX §5.3; stages per national guidance, qaflow's default)",
        "The escalation has 4 stages; each stage holder has a response deadline; managers may ask the chair for further time before the next stage, and the chair grants or refuses it.",
    ),
    "BX-ESC-CP-03": Clause(
        "BX-ESC-CP-03",
        "Escalations — CP conference chair (BX §5.3; stages per national guidance, qaflow's default)",
        "The chair may resolve or withdraw at any stage; a resolved or withdrawn escalation never moves again.",
    ),
    "NAT-CP-01": Clause(
        "NAT-CP-01",
        "Escalations — CP conference chair (BX §5.3; stages per national guidance, qaflow's default)",
        "No statutory guidance governs CP chair escalations; councils mirror the IRO process: the chair may bypass any stage, and moves on when not satisfied or when no response arrives in time.",
    ),
    "BX-ESC-IRO-01": Clause(
        "BX-ESC-IRO-01",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "The escalation has 5 stages; the IRO may grant managers further time before the next stage.",
    ),
    "BX-ESC-IRO-02": Clause(
        "BX-ESC-IRO-02",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "The IRO informs the child of their rights and helps them get an advocate and/or legal representation.",
    ),
    "BX-ESC-IRO-03": Clause(
        "BX-ESC-IRO-03",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "The IRO consults and keeps informed the child and other relevant persons at each stage.",
    ),
    "BX-ESC-IRO-04": Clause(
        "BX-ESC-IRO-04",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "When the council's stages do not resolve the concern, the IRO refers the case to Cafcass (terminal state).",
    ),
    "NAT-IRO-01": Clause(
        "NAT-IRO-01",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "Informal resolution with the social worker or their manager comes first, recorded on the child's file.",
    ),
    "NAT-IRO-02": Clause(
        "NAT-IRO-02",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "The IRO may bypass any stage.",
    ),
    "NAT-IRO-03": Clause(
        "NAT-IRO-03",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "The formal stages' response timescales add up to no more than 20 WD (a policy that breaks this is refused when loaded).",
    ),
    "NAT-IRO-04": Clause(
        "NAT-IRO-04",
        "Escalations — IRO, children in care (BX §5.3; IRO Handbook 2010 §6; stages per national guidance, qaflow's default)",
        "The IRO may refer to Cafcass at any point, including at the same time as starting the process, when waiting would delay things for the child.",
    ),
    "BX-ESC-FIRO-01": Clause(
        "BX-ESC-FIRO-01",
        "Escalations — Fostering IRO (BX §5.3)",
        "Informal resolution first, with the supervising social worker or fostering manager, recorded as a case note on the foster carer's file.",
    ),
    "BX-ESC-FIRO-02": Clause(
        "BX-ESC-FIRO-02",
        "Escalations — Fostering IRO (BX §5.3)",
        "Formal ladder: Stage 1 team manager/service manager 5 WD; Stage 2 head of service 5 WD; Stage 3 assistant director 5 WD; Stage 4 director 8 WD.",
    ),
    "BX-ESC-FIRO-03": Clause(
        "BX-ESC-FIRO-03",
        "Escalations — Fostering IRO (BX §5.3)",
        "The FIRO may bypass any stage and go to the level they judge right.",
    ),
    "BX-ESC-FIRO-04": Clause(
        "BX-ESC-FIRO-04",
        "Escalations — Fostering IRO (BX §5.3)",
        "Managers may request further time before escalation to the next stage.",
    ),
    "BX-ESC-FIRO-05": Clause(
        "BX-ESC-FIRO-05",
        "Escalations — Fostering IRO (BX §5.3)",
        "The FIRO consults and keeps informed the foster carer and other relevant persons at each stage.",
    ),
    "NAT-CAL-01": Clause(
        "NAT-CAL-01",
        "Calendar",
        "A working day is not a Saturday, Sunday, Christmas Day, Boxing Day, Good Friday or an England and Wales bank holiday, one-off ones included (e.g. 19 Sep 2022, 8 May 2023). A council may add closure days.",
    ),
    "BK-TS-01": Clause(
        "BK-TS-01",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "Contact: the decision on the response and feedback to the referrer within 72 h of the referral. s47 triggered: child visited within 24 h. s17 Child and Family assessment started: child visited within 5 WD of the referral being opened.",
    ),
    "BK-TS-02": Clause(
        "BK-TS-02",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "Strategy discussion/meeting within 24 h of the concern being identified, chaired by a manager. s47 enquiry completed within 15 WD. ICPC requested within 5 WD and held within 15 WD of the strategy discussion.",
    ),
    "BX-TS-01": Clause(
        "BX-TS-01",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "BX §5.2: an ICPC is held no later than 15 WD after the strategy discussion.",
    ),
    "BK-TS-03": Clause(
        "BK-TS-03",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "Visits, rolling. CIN: at least every 4 weeks; unannounced at least every 3 months. CP plan: within 5 WD of the ICPC, then at least every 10 WD; unannounced at least every 4 weeks. Looked after: on the day of placement, within 1 week, then at most every 6 weeks in the placement's first year, every 6 weeks after, or at most every 3 months once agreed as permanent.",
    ),
    "BK-TS-04": Clause(
        "BK-TS-04",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "Visits, rolling, other statuses: adoptive placement within the first week then weekly until the first adoption review; private fostering within 5 WD of notification, then at most every 6 weeks in the first 12 months, 12 weeks after; interim care order weekly until the first review; supervision order within the first week then at most every 10 days for at least 3 months; more than one placement: each setting at least every 12 weeks; remanded: within 72 h.",
    ),
    "BK-TS-05": Clause(
        "BK-TS-05",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "Plan reviews, rolling: CIN at most every 8 weeks (first and last chaired by a manager); CP at most every 4 weeks (first core group after ICPC chaired by a manager); pathway plan within 3 months then at most every 6 months; short-break plans the same; permanence plan ready for the 2nd looked-after review.",
    ),
    "BK-TS-06": Clause(
        "BK-TS-06",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "Recording: significant events recorded within 1 WD; a plan changed at review updated on the record within 48 h.",
    ),
    "BK-TS-07": Clause(
        "BK-TS-07",
        'Practice timescales (BK App. 3 "Practice Standards"; BX §5.2)',
        "Missing child: visited by the allocated worker within 24 h of return; return home interview (by someone independent) within 72 h; referral to the RHI service within 24 h of the child being found where it applies.",
    ),
    "BX-SUP-01": Clause(
        "BX-SUP-01",
        'Supervision (BX §5.1 and "Hints & tips" §4; BK "Expectations of Managers")',
        "Case-holding practitioners: 1.5–2 h supervision weekly for the first 4 weeks, fortnightly for the next 4 weeks, then at least every 4 weeks. Non-case-holding: at least every 4 weeks. Group supervision every 2–4 weeks.",
    ),
    "BX-SUP-02": Clause(
        "BX-SUP-02",
        'Supervision (BX §5.1 and "Hints & tips" §4; BK "Expectations of Managers")',
        '"Hints & tips" §4 differs: newly qualified staff weekly for at least 6 months, then fortnightly for 6 months; experienced at least every 4 weeks; sessions 90–120 min, booked up to 6 months ahead. The policy must choose between BX-SUP-01 and this and say why.',
    ),
    "BK-SUP-01": Clause(
        "BK-SUP-01",
        'Supervision (BX §5.1 and "Hints & tips" §4; BK "Expectations of Managers")',
        "Newly qualified social workers: supervision fortnightly for the first 6 months, then at least monthly; other practitioners at least monthly; a signed supervision agreement reviewed annually; casework supervision recorded on the child's file within 1 WD; a formal observation of practice recorded in supervision at least once a year; an annual appraisal.",
    ),
    "BX-QA-01": Clause(
        "BX-QA-01",
        'QA calendar (BX §1.1 table, §1.3, §5.4; BK "Professional Challenge")',
        "Monthly: practitioners self-assess; each manager completes a collaborative case audit (BX-AUD-13); a sample of audits is moderated.",
    ),
    "BX-QA-02": Clause(
        "BX-QA-02",
        'QA calendar (BX §1.1 table, §1.3, §5.4; BK "Professional Challenge")',
        "Themes from auditing are reported monthly and in the quarterly QA report; the quarterly report is reviewed in week 5 of the 10-week performance and accountability cycle.",
    ),
    "BX-QA-03": Clause(
        "BX-QA-03",
        'QA calendar (BX §1.1 table, §1.3, §5.4; BK "Professional Challenge")',
        "Practice Week takes place every six months and includes practice observations for its audits (BX-AUD-11).",
    ),
    "BK-QA-01": Clause(
        "BK-QA-01",
        'QA calendar (BX §1.1 table, §1.3, §5.4; BK "Professional Challenge")',
        "Audits take place every month; a sample of each month's audits is moderated (BK-MOD-01); aggregated findings are reported monthly.",
    ),
}


def clause(clause_id: str) -> Clause:
    """The clause with this ID (``KeyError`` names the unknown ID)."""
    return CLAUSES[clause_id]
