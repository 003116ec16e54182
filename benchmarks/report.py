"""QA report benchmark: the same quarter on a 5-year and on a 1-year database.

    python benchmarks/report.py           # full: default-sized council
    python benchmarks/report.py --quick   # a smaller council, well under a minute
    python benchmarks/report.py --quick --practice   # with the practice's timescales too

The report's cost should follow the period's events, not the store's age (issue 14): the
figure is the time of ``build_report`` for the last full quarter on a database holding five
years of the programme, divided by the time for the same quarter on one holding one year
(same council, same seed for the last year's months), target ≤ 1.3x. The same ratio for the
old way of reading (every workflow's whole history: the report's fallback for a store
without period reads) is printed beside it, and both readings are checked to give the same
report. Times are medians of alternating runs (see benchmarks/_common.py).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from _common import Row, header, line, ms, paired, summary
from qaflow import SQLiteStore
from qaflow._practice import run_practice
from qaflow.programme import generate_council, period_bounds, run_programme
from qaflow.registry import shipped_report_policies
from qaflow.report import build_report

QUARTER = (date(2030, 7, 1), date(2030, 10, 1))
TARGET = 1.3
KNOWN = shipped_report_policies()


def whole_histories(store: SQLiteStore) -> Any:
    """The same store without the period reads: the report reads every whole history
    (and compliance every snapshot, replaying each rolling workflow)."""

    class WholeHistories(SQLiteStore):
        period_workflows = quiet_workflows = tasks_created = notifications_created = None
        period_snapshots = period_deadlines = events_after = None

    copy = object.__new__(WholeHistories)
    copy.__dict__.update(store.__dict__)
    return copy


def build(path: Path, years: int, quick: bool, practice: bool = False) -> SQLiteStore:
    teams, per_team = (4, 5) if quick else (8, 6)
    council = generate_council(7, teams=teams, practitioners_per_team=per_team)
    store = SQLiteStore(path, synchronous="NORMAL")
    store.conn.execute("PRAGMA synchronous=OFF")  # setup only
    first = 2031 - years
    run_programme(council, months=12 * years, start=date(first, 1, 1), seed=7, store=store)
    if practice:  # case, supervision and QA-calendar timescales over the same years
        start, end = period_bounds(date(first, 1, 1), 12 * years)
        run_practice(store, council, policy="bexley", start=start, end=end, seed=7)
    return store


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smaller council")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the SQLite files")
    parser.add_argument(
        "--practice",
        action="store_true",
        help="also play the practice (rolling timescales, counted by the report's compliance)",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(
        f"qaflow report benchmark ({'quick' if args.quick else 'full'}); Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="qaflow-report-", dir=args.dir))
    rows: list[Row] = []
    try:
        t0 = time.perf_counter()
        one = build(tmp / "one.db", 1, args.quick, args.practice)
        five = build(tmp / "five.db", 5, args.quick, args.practice)
        sizes = [s.counts()["events"] for s in (one, five)]
        header(f"the quarter {QUARTER[0]} .. {QUARTER[1]} on a 1-year and a 5-year database")
        line("setup: run the programme into both", f"{time.perf_counter() - t0:,.1f} s")
        line("events held, 1 year / 5 years", f"{sizes[0]:,} / {sizes[1]:,}")
        start, end = QUARTER
        assert build_report(one, start=start, end=end, policies=KNOWN) == build_report(
            whole_histories(one), start=start, end=end, policies=KNOWN
        )
        assert build_report(five, start=start, end=end, policies=KNOWN) == build_report(
            whole_histories(five), start=start, end=end, policies=KNOWN
        )

        def timed(store: Any, months: int = 0) -> Callable[[], float]:
            def run() -> float:
                t = time.perf_counter()
                build_report(store, start=start, end=end, policies=KNOWN, trend_months=months)
                return time.perf_counter() - t

            return run

        reps = 11 if args.quick else 21
        new = paired(timed(five), timed(one), reps)
        old = paired(timed(whole_histories(five)), timed(whole_histories(one)), 3)
        line("period reads: quarter on 1 year", ms(new.baseline))
        line("period reads: quarter on 5 years", ms(new.subject))
        line("  ratio", f"{new.ratio:.2f}x", f"(target ≤ {TARGET}x)")
        line("whole histories (before): quarter on 1 year", ms(old.baseline))
        line("whole histories (before): quarter on 5 years", ms(old.subject))
        line("  ratio", f"{old.ratio:.2f}x")
        line("period reads vs whole histories, 5 years", f"{new.subject / old.subject:.3f}x")
        trend = paired(timed(five, 15), timed(one, 15), 3 if args.quick else 5)
        line("with 15 months of trends: quarter on 1 year", ms(trend.baseline))
        line("with 15 months of trends: quarter on 5 years", ms(trend.subject))
        line("  ratio", f"{trend.ratio:.2f}x")
        line("trends' cost over the quarter alone, 5 years", f"{trend.subject / new.subject:.1f}x")
        # 15 months reach back before the 1-year database's first day, so that ratio also
        # counts the months only the 5-year one holds; 9 months (January to the quarter's
        # end) lie inside both.
        fair = paired(timed(five, 9), timed(one, 9), 3 if args.quick else 5)
        line("with 9 months of trends: quarter on 1 year", ms(fair.baseline))
        line("with 9 months of trends: quarter on 5 years", ms(fair.subject))
        line("  ratio", f"{fair.ratio:.2f}x")
        rows.append(
            Row(
                "report quarter, 5y vs 1y",
                ms(new.subject),
                f"{new.ratio:.2f}x (whole histories {old.ratio:.2f}x)",
                f"≤ {TARGET}x",
                new.ratio <= TARGET,
            )
        )
        one.close()
        five.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary(rows)
    print(f"\ntotal {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
