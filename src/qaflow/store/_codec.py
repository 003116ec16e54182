"""The JSON of a snapshot's open deadlines, by hand: the same text as the cattrs converter.

Written and read on every durable command; the cattrs round trip cost more than the SQL
(issue 14). ``tests/test_store_contract.py`` checks both directions against the converter.
"""

from __future__ import annotations

import json
from datetime import datetime

from qaflow.records import Deadline, utc_isoformat

__all__ = ["deadlines_from_json", "deadlines_json"]


def deadlines_json(deadlines: tuple[Deadline, ...]) -> str:
    """The snapshot's open deadlines as the JSON ``converter.unstructure`` gives, built by hand.

    Written on every command: the cattrs round trip cost more than the SQL (issue 14). The
    text is the same, key for key (tests/test_store_contract.py checks it).
    """
    if not deadlines:
        return "[]"
    return json.dumps(
        [
            {
                "id": d.id,
                "workflow_id": d.workflow_id,
                "name": d.name,
                "state": d.state,
                "opened_at": utc_isoformat(d.opened_at),
                "due_at": utc_isoformat(d.due_at),
                "rule": d.rule,
                "breach_trigger": d.breach_trigger,
                "clause": d.clause,
                "notify": list(d.notify),
                "opened_seq": d.opened_seq,
            }
            for d in deadlines
        ]
    )


def deadlines_from_json(text: str) -> tuple[Deadline, ...]:
    """The inverse of :func:`deadlines_json` (what ``converter.structure`` returns)."""
    if text == "[]":
        return ()
    parse = datetime.fromisoformat
    return tuple(
        Deadline(
            d["id"],
            d["workflow_id"],
            d["name"],
            d["state"],
            parse(d["opened_at"]),
            parse(d["due_at"]),
            d["rule"],
            d["breach_trigger"],
            d["clause"],
            tuple(d["notify"]),
            d["opened_seq"],
        )
        for d in json.loads(text)
    )
