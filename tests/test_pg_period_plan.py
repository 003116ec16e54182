"""PostgreSQL's period reads keep to the period at scale (issue 14, the report).

``period_workflows`` reads the events of the workflows a period touched. It did so with a
subquery on workflows, which the planner, misjudging two correlated time ranges, answered
by hashing the workflows and walking every event of the store; it now reads them by key.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from qaflow import PostgresStore

_WEEK = timedelta(days=7)


def test_a_period_reads_its_workflows_events_by_key_at_scale(pg_dsn: str) -> None:
    """``period_workflows`` reads the events of the workflows it found by their key: with
    20,000 workflows (five events each, rows made in SQL) and a week touching 264 of them,
    the server's own plan, statistics fresh, neither walks the events nor hashes the
    workflows (the subquery it replaced did both: the planner misjudges the two correlated
    time ranges by 50x)."""

    class Recorded(PostgresStore):
        def _select(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
            seen.append((sql, args))
            return super()._select(sql, args)

    seen: list[tuple[str, Any]] = []
    with Recorded(pg_dsn) as store, psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO workflows (workflow_id, machine, policy, policy_version, state, "
            "version, created_at, updated_at, last_hash, data, deadlines, fingerprint) "
            "SELECT 'W' || g, 'example.review', 'example', '1', 'submitted', 5, "
            "timestamptz '2020-01-01' + g * interval '1 hour', "
            "timestamptz '2020-01-05' + g * interval '1 hour', 'h', '{}', '[]', 'f' "
            "FROM generate_series(1, 20000) g"
        )
        conn.execute(
            "INSERT INTO events (workflow_id, seq, trigger, source, dest, actor_id, actor_role, "
            "at, payload, prev_hash, hash) SELECT 'W' || g, s, 'comment', 'submitted', "
            "'submitted', 'M-1', 'manager', "
            "timestamptz '2020-01-01' + g * interval '1 hour' + s * interval '19 hours', "
            "'{}', 'p', 'h' FROM generate_series(1, 20000) g, generate_series(1, 5) s"
        )
        conn.execute("ANALYZE")
        start = datetime(2021, 1, 1, tzinfo=UTC)
        found = list(store.period_workflows(start, start + _WEEK))
        assert len(found) == 264 and {len(events) for _, events in found} == set(range(6))
        (sql, args) = next((s, a) for s, a in seen if "FROM events" in s)
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, args))  # type: ignore[operator]
    assert "Seq Scan on events" not in plan and "Hash" not in plan, plan
    assert "workflows" not in plan, plan
    assert re.search(r"Index Cond: \(workflow_id = ANY", plan), plan
