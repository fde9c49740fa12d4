"""B6: a full rebuild of every projection against its floor, one plain
`INSERT … SELECT … GROUP BY` of the daily totals into an empty table; and the peak memory
of the process doing the rebuild."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psutil
import psycopg

from bench.context import Context
from bench.generate import plain_url
from bench.report import Outcome, Row, median, rate, times

FLOOR_TARGET = 3.0  # the rebuild within 3× the floor's time
RSS_TARGET_MB = 500
SAMPLE_SECONDS = 0.05
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A regular (logged) table, created in the same transaction as the load: exactly the
# conditions of the rebuild's new tables.
FLOOR_SQL = (
    "CREATE TABLE bench_floor (org_id uuid, day date, user_id uuid, project_id uuid,"
    " task_id uuid, billable boolean, seconds bigint, billable_seconds bigint,"
    " amount bigint, entries bigint)",
    """
    INSERT INTO bench_floor
    SELECT e.org_id, (e.start_at AT TIME ZONE o.timezone)::date, e.user_id, e.project_id,
           e.task_id, e.billable,
           sum(d.seconds),
           sum(CASE WHEN e.billable THEN d.seconds ELSE 0 END),
           sum(CASE WHEN e.billable THEN (d.seconds * e.hourly_rate_amount + 1800) / 3600
               ELSE 0 END),
           count(*)
    FROM time_entries e
    JOIN organizations o ON o.id = e.org_id
    CROSS JOIN LATERAL (
        SELECT FLOOR(EXTRACT(EPOCH FROM (e.end_at - e.start_at)))::bigint AS seconds) d
    WHERE e.deleted_at IS NULL AND e.end_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6
    """,
)


def floor_once(database_url: str) -> float:
    """Seconds for the floor, commit included; the table is dropped afterwards."""
    with psycopg.connect(plain_url(database_url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_floor")
        conn.commit()
        started = time.perf_counter()
        for statement in FLOOR_SQL:
            conn.execute(statement)
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_floor")
        conn.commit()
    return seconds


@dataclass
class ChildRun:
    seconds: float
    peak_rss: int
    steps: list[tuple[str, float]] = field(default_factory=list)


def rebuild_once(database_url: str) -> ChildRun:
    """Run the rebuild in a child process and sample its resident memory every 50 ms."""
    env = {**os.environ, "DATABASE_URL": database_url}
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.rebuild_child"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = _sample_peak_rss(child)
    out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"bench.rebuild_child failed with exit code {child.returncode}")
    result = json.loads(out)
    return ChildRun(result["seconds"], peak, [tuple(s) for s in result["steps"]])


def _sample_peak_rss(child: subprocess.Popen[str]) -> int:
    process = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            peak = max(peak, process.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(SAMPLE_SECONDS)
    return peak


def run(ctx: Context) -> Outcome:
    floors: list[float] = []
    rebuilds: list[ChildRun] = []
    for _ in range(ctx.runs):
        floors.append(floor_once(ctx.database_url))
        rebuilds.append(rebuild_once(ctx.database_url))
    floor = median(floors)
    rebuild = median([r.seconds for r in rebuilds])
    ratio = rebuild / floor
    peak_mb = max(r.peak_rss for r in rebuilds) / 2**20
    rows = [
        Row(
            "B6 rebuild, all projections",
            f"{rate(ctx.entries, rebuild)} entries/s ({rebuild:.1f} s)",
            f"INSERT…SELECT…GROUP BY: {rate(ctx.entries, floor)} entries/s ({floor:.1f} s)",
            times(ratio),
            f"≤ {FLOOR_TARGET:g}× the floor's time",
            ratio <= FLOOR_TARGET,
        ),
        Row(
            "B6 rebuild worker peak RSS",
            f"{peak_mb:,.0f} MB",
            target=f"< {RSS_TARGET_MB} MB",
            met=peak_mb < RSS_TARGET_MB,
        ),
    ]
    return Outcome(rows, _notes(ctx, floors, rebuilds))


def _notes(ctx: Context, floors: list[float], rebuilds: list[ChildRun]) -> list[str]:
    steps: dict[str, list[float]] = defaultdict(list)
    for run_ in rebuilds:
        for name, seconds in run_.steps:
            steps[name].append(seconds)
    slowest = sorted(((median(v), k) for k, v in steps.items()), reverse=True)[:8]
    breakdown = ", ".join(f"{name} {seconds:.1f} s" for seconds, name in slowest)
    return [
        f"B6: medians of {ctx.runs} runs each (floor runs "
        f"{', '.join(f'{s:.1f}' for s in floors)} s; rebuild runs "
        f"{', '.join(f'{r.seconds:.1f}' for r in rebuilds)} s). The rebuild is "
        "`projections.rebuild.rebuild` for every projection of the registry, in a child "
        "process (`python -m bench.rebuild_child`) whose RSS is sampled every 50 ms. The "
        "floor is one `INSERT INTO bench_floor SELECT org, local day, user, project, task, "
        "billable, sums, count(*) FROM time_entries JOIN organizations GROUP BY …` into a "
        "regular (logged, not UNLOGGED) table created in the same transaction, as the "
        "rebuild's new tables are; entries/s count every generated entry.",
        "B6 slowest rebuild steps (median of the time from a step's start to the next "
        "step's start, whichever session it is in: the entries projection's lanes run at "
        "once, so these overlap; an index step includes the swap after it): "
        f"{breakdown}.",
    ]
