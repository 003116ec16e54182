"""Words for the report's codes, taken from the policies: a council's reader sees the question
text, the feedback statement, the ladder's and the stage's titles and role names, never ``Q7``,
``F3``, ``escalation.cp_chair`` or ``stage_2``.

The report itself holds ids only (it is data); the renderers ask :class:`Labels` for the words.
A code no policy knows is still shown readably (``team_manager`` reads "Team manager").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from qaflow.calendar import LONDON
from qaflow.machines.escalation import level_of
from qaflow.procedure import AuditPolicy
from qaflow.report._policies import ReportPolicies
from qaflow.report._records import OnTime

_STAGE: Final = re.compile(r"\bstage_(\d+)\b")
_MACHINES: Final = {
    "audit": "Case audit",
    "moderation": "Moderation",
}


def humanise(code: str) -> str:
    """``team_manager`` -> "Team manager": the readable fallback for an unknown code."""
    words = code.replace("_", " ").replace("-", " ").strip()
    return (words[:1].upper() + words[1:]) if words else code


def plain_date(moment: datetime) -> str:
    """``1 January 2026``: a day in London, as a reader writes it."""
    local = moment.astimezone(LONDON)
    return f"{local.day} {local:%B %Y}"


def plain_period(start: datetime, end: datetime) -> str:
    """``1 January 2026 to 31 March 2026`` for ``[start, end)`` (the end day is excluded)."""
    return f"{plain_date(start)} to {plain_date(end - timedelta(microseconds=1))}"


def plain_moment(moment: datetime) -> str:
    """``3 March 2026, 14:00``: a time in London."""
    local = moment.astimezone(LONDON)
    return f"{plain_date(moment)}, {local:%H:%M}"


class Labels:
    """Looks codes up in the audit policies and ladders the renderer was given."""

    def __init__(self, policies: Iterable[str] = (), *, known: ReportPolicies) -> None:
        audits = known.audit_map()
        wanted = [audits[name] for name in policies if name in audits]
        ordered = [*wanted, *(p for p in audits.values() if p not in wanted)]
        self._questions: dict[str, str] = {}
        self._sections: dict[str, str] = {}
        for policy in ordered:
            form = policy.form
            for section in form.sections:
                self._sections.setdefault(section.id, section.title)
                for question in section.questions:
                    self._questions.setdefault(question.id, question.text)
        self._known = known

    def question(self, question_id: str) -> str:
        """The question's text (a practice area, a feedback statement, a scale)."""
        return self._questions.get(question_id) or f"Question {question_id}"

    def section(self, section_id: str | None) -> str:
        if not section_id:
            return ""
        return self._sections.get(section_id) or humanise(section_id)

    def ladder(self, name: str) -> str:
        """The ladder's title, e.g. "Child protection conference chair escalation"."""
        ladder = self._known.ladder(name)
        return (ladder.title if ladder and ladder.title else None) or humanise(name)

    def stage(self, ladder_name: str, state: str) -> str:
        """The stage's title on its ladder, e.g. "Service manager" for ``stage_2``."""
        ladder = self._known.ladder(ladder_name)
        if ladder is not None:
            level = level_of(ladder, state)
            if level == 0 and ladder.informal is not None:
                return ladder.informal.label and humanise(ladder.informal.label)
            if level is not None and 1 <= level <= len(ladder.stages):
                return humanise(ladder.stages[level - 1].label)
            if ladder.referral is not None and level is not None:
                return humanise(ladder.referral.label)
        match = _STAGE.fullmatch(state)
        return f"Stage {match.group(1)}" if match else humanise(state)

    def machine(self, machine: str) -> str:
        """What kind of work a machine runs: "Case audit", or the ladder's title."""
        if self._known.ladder(machine) is not None:
            return self.ladder(machine)
        return _MACHINES.get(machine) or humanise(machine)

    def deadline(self, machine: str, name: str) -> str:
        """A deadline's name with any ``stage_k`` replaced by that stage's title."""
        if self._known.ladder(machine) is not None:
            name = _STAGE.sub(lambda m: self.stage(machine, m.group(0)).lower(), name)
        else:
            name = _STAGE.sub(lambda m: f"stage {m.group(1)}", name)
        return humanise(name)

    def _in_report(self, policies: Iterable[str]) -> list[AuditPolicy]:
        audits = self._known.audit_map()
        return [audits[name] for name in policies if name in audits]

    def follow_ups(self, policies: Iterable[str], item: OnTime) -> str:
        """ "Follow-ups within 5 WD (BX-AUD-09)": the timescale the report's policies set."""
        limits = {p.follow_up.within for p in self._in_report(policies) if p.follow_up}
        within = limits.pop().replace("WD", "working days") if len(limits) == 1 else None
        title = f"Follow-ups within {within}" if within else "Follow-ups"
        return f"{title} ({', '.join(item.clauses)})" if item.clauses else title

    def feedback_clauses(self, policies: Iterable[str]) -> tuple[str, ...]:
        """The clauses of the family feedback rules of the report's policies."""
        found = {p.feedback.clause for p in self._in_report(policies) if p.feedback}
        return tuple(sorted(found))

    def role(self, role: str | None) -> str:
        return "" if not role else humanise(role)

    def clause(self, clause_id: str) -> str:
        """The clause's topic after its id: "BX-AUD-09 (Collaborative case audit ...)"."""
        found = self._known.clauses.get(clause_id)
        if found is None:
            return clause_id if clause_id != "(none)" else "No clause"
        topic = found.split(" (")[0]
        return f"{clause_id}: {topic}"
