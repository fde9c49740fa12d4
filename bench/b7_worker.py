"""B7: what the worker costs. (a) no-op RQ jobs per second with the in-process
SimpleWorker and the forking Worker on the same Redis; (b) changes projected per second by
`projections.runner.advance` (entries projection, default batch size). The projection must
go at least 10× faster than jobs: one job per change would cap it at the job rate."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from rq import Queue
from rq.worker import BaseWorker, SimpleWorker, Worker
from sqlalchemy import text

from bench.context import Context
from bench.jobs import noop
from bench.report import Outcome, Row, median, times
from bench.sqltime import statement_times
from projections.registry import by_name
from projections.runner import DEFAULT_BATCH_SIZE, advance

QUEUE = "bench-noop"
LOG_FILE = Path(__file__).resolve().parent.parent / ".evotrack" / "bench" / "rq-worker.log"
JOBS = {SimpleWorker: 500, Worker: 200}
CHANGES = 5_000
RATIO_TARGET = 10.0
CATCH_UP_SECONDS = 120.0


# --- (a) no-op jobs -----------------------------------------------------------------------


def _log_to_file() -> None:
    """RQ logs every job at INFO, as the real worker does; to a file, not the terminal."""
    logger = logging.getLogger("rq.worker")
    if not logger.handlers:
        LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(LOG_FILE)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


def jobs_per_second(connection: redis.Redis, worker_class: type[BaseWorker], jobs: int) -> float:
    """Enqueue `jobs` no-op jobs, then time a burst worker through them."""
    queue = Queue(QUEUE, connection=connection)
    queue.empty()  # type: ignore[no-untyped-call]
    queue.enqueue_many([Queue.prepare_data(noop) for _ in range(jobs)])
    worker = worker_class([queue], connection=connection)
    started = time.perf_counter()
    worker.work(burst=True, logging_level="INFO")
    seconds = time.perf_counter() - started
    left = queue.count
    queue.empty()  # type: ignore[no-untyped-call]
    if left:
        raise RuntimeError(f"{worker_class.__name__} left {left} jobs in the queue")
    return jobs / seconds


# --- (b) changes projected ----------------------------------------------------------------

# Which entries get edited, and how: any of the year (every change lands in another day
# bucket), or those of the last 7 days (what people edit in practice); a new description
# (the entry row changes, no total does) or billable flipped (every total of the entry
# moves: its old bucket row in each roll-up loses it, another gains it).
RECENT = "start_at >= (SELECT max(start_at) FROM time_entries) - interval '7 days'"
DESCRIPTION = "description = left(:note || ' ' || e.description, 3000)"
BILLABLE = "billable = NOT e.billable"
WORKLOADS = {
    "random entries of the year": ("true", DESCRIPTION),
    "entries of the last 7 days": (RECENT, DESCRIPTION),
    "random entries of the year, billable flipped": ("true", BILLABLE),
}

EDIT_SQL = """
    WITH picked AS (
        SELECT id FROM time_entries
        WHERE deleted_at IS NULL AND end_at IS NOT NULL AND {where}
        ORDER BY random() LIMIT :k),
    edited AS (
        UPDATE time_entries e SET {edit}, updated_at = now()
        FROM picked WHERE e.id = picked.id
        RETURNING e.*)
    INSERT INTO changes (org_id, entity, entity_id, op, payload)
    SELECT org_id, 'time_entry', id, 'updated', jsonb_build_object(
        'old', NULL,
        'new', jsonb_build_object('id', id, 'user_id', user_id, 'project_id', project_id,
            'task_id', task_id, 'description', description, 'billable', billable,
            'start_at', start_at, 'end_at', end_at, 'hourly_rate', hourly_rate_amount))
    FROM edited
"""


@dataclass(frozen=True)
class Projected:
    changes: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.changes / self.seconds


def catch_up(ctx: Context) -> None:
    """Bring the entries projection to the watermark (untimed)."""
    advance(ctx.sessions, by_name("entries"))


def write_changes(ctx: Context, count: int, workload: tuple[str, str], note: str) -> int:
    """Edit `count` random finished entries matching the workload's filter, with their
    change rows, in one transaction."""
    where, edit = workload
    with ctx.sessions() as session, session.begin():
        sql = EDIT_SQL.format(where=where, edit=edit)
        result = session.execute(text(sql), {"k": count, "note": note})
        return int(getattr(result, "rowcount", 0) or 0)


def project_changes(ctx: Context, count: int) -> Projected:
    """Time `advance` (default batch size) until `count` changes are applied."""
    projector = by_name("entries")
    applied = 0
    started = time.perf_counter()
    deadline = started + CATCH_UP_SECONDS
    while applied < count and time.perf_counter() < deadline:
        applied += advance(ctx.sessions, projector, batch_size=DEFAULT_BATCH_SIZE).applied
    return Projected(applied, time.perf_counter() - started)


def measure_projection(ctx: Context, workload: tuple[str, str]) -> list[Projected]:
    catch_up(ctx)
    runs = []
    for i in range(ctx.runs):
        written = write_changes(ctx, CHANGES, workload, f"bench edit {i}")
        runs.append(project_changes(ctx, written))
    return runs


def projection_row(workload: str, runs: list[Projected], simple: float) -> Row:
    per_second = median([p.per_second for p in runs])
    ratio = per_second / simple
    return Row(
        f"B7 changes projected, {workload} (batch {DEFAULT_BATCH_SIZE})",
        f"{per_second:,.0f} changes/s",
        f"no-op jobs, SimpleWorker: {simple:,.0f} jobs/s",
        times(ratio),
        f"≥ {RATIO_TARGET:g}× the job rate",
        ratio >= RATIO_TARGET,
    )


def run(ctx: Context) -> Outcome:
    _log_to_file()
    connection = redis.Redis.from_url(ctx.redis_url)
    rates = {
        cls: median([jobs_per_second(connection, cls, jobs) for _ in range(ctx.runs)])
        for cls, jobs in JOBS.items()
    }
    simple, forking = rates[SimpleWorker], rates[Worker]
    projected: dict[str, list[Projected]] = {}
    with statement_times(ctx.engine) as sql:
        for name, workload in WORKLOADS.items():
            projected[name] = measure_projection(ctx, workload)
    rows = [projection_row(workload, runs, simple) for workload, runs in projected.items()]
    rows.append(
        Row(
            "B7 no-op jobs, forking Worker",
            f"{forking:,.0f} jobs/s",
            f"SimpleWorker: {simple:,.0f} jobs/s",
            times(forking / simple),
            "information (worker class choice)",
        )
    )
    return Outcome(rows, _notes(ctx, projected, sql.describe()))


def _notes(ctx: Context, projected: dict[str, list[Projected]], slowest: str) -> list[str]:
    figures = "; ".join(
        f"{workload}: {', '.join(f'{p.per_second:,.0f}' for p in runs)} changes/s"
        for workload, runs in projected.items()
    )
    return [
        f"B7 (a): {', '.join(f'{n} no-op jobs' for n in JOBS.values())} for SimpleWorker and "
        "the forking Worker respectively, enqueued at once, then one burst worker times "
        f"through them; RQ logs at INFO to a file; median of {ctx.runs} runs each.",
        f"B7 (b): {CHANGES:,} finished entries edited in one transaction with one "
        "'time_entry' change row each, then `projections.runner.advance` on the entries "
        f"projection (batch {DEFAULT_BATCH_SIZE}) timed until all are applied; median of "
        f"{ctx.runs} runs per workload ({figures}). Random entries of the year land each in "
        "another day and month bucket; the last 7 days are what people edit in practice. A "
        "new description changes the entry row only (totals follow the difference of old "
        "and new entry rows, which cancels); billable flipped moves every total of the "
        "entry, the hard case.",
        f"B7 (b) slowest statements (all runs, edits included): {slowest}.",
    ]
