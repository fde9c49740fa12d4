"""`python -m bench --profile quick|full`: generate the data, run the benchmarks, print one
markdown table and write it with the machine's description to bench/results/latest.md.

B1 writes, B2 bulk writes, B3 write-to-read lag, B4 reports, B5 pagination (these run the
APIs and the worker as processes of their own, as `evotrack run` does), B6 rebuild, B7
worker overhead, B8 delta sync catch-up, B9 webhook fan-out; in that order. What B1–B3 and
B9 write is deleted again afterwards.

Uses DATABASE_URL / REDIS_URL when set (the data go to a database `evotrack_bench` on
that server), else embedded servers in .evotrack/bench/.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
import redis

from bench import (
    b1_writes,
    b2_bulk,
    b3_lag,
    b4_reports,
    b5_pagination,
    b6_rebuild,
    b7_worker,
    b8_sync,
    b9_webhooks,
)
from bench.context import PROFILES, Benchmark, Context
from bench.generate import Options, generate, plain_url
from bench.report import Outcome, Row, document, load_average, machine, table, write
from bench.services import (
    BENCH_DATABASE,
    Services,
    recreate_database,
    server_facts,
    services,
)

GENERATE_TARGET = 100_000  # entries/s for the COPY part (issue 5 §1)

BENCHMARKS: dict[str, Benchmark] = {
    "B1": b1_writes.run,
    "B2": b2_bulk.run,
    "B3": b3_lag.run,
    "B4": b4_reports.run,
    "B5": b5_pagination.run,
    "B6": b6_rebuild.run,
    "B7": b7_worker.run,
    "B8": b8_sync.run,
    "B9": b9_webhooks.run,
}


@dataclass(frozen=True)
class Arguments:
    profile: str
    entries: int
    seed: int
    only: list[str]
    reuse: bool


def parse_args(argv: Sequence[str] | None) -> Arguments:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--entries", type=int, help="override the profile's entry count")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"keep the data in {BENCH_DATABASE} when it has exactly that many entries",
    )
    args = parser.parse_args(argv)
    only = [name.strip().upper() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)}")
    entries = args.entries if args.entries is not None else PROFILES[args.profile].entries
    if entries < 1:
        parser.error("--entries must be positive")
    return Arguments(args.profile, entries, args.seed, only or list(BENCHMARKS), args.reuse)


def existing_data(found: Services, entries: int) -> list[str] | None:
    """The organizations of a previous run's data when it has exactly `entries` entries."""
    try:
        with psycopg.connect(plain_url(found.database_url)) as conn:
            row = conn.execute("SELECT count(*) FROM time_entries").fetchone()
            if not row or row[0] != entries:
                return None
            return [str(r[0]) for r in conn.execute("SELECT id FROM organizations")]
    except psycopg.Error:
        return None


def prepare_data(found: Services, args: Arguments) -> tuple[list[str], Row, list[str]]:
    """Generate (or reuse) the data; the generator's row and notes."""
    reused = existing_data(found, args.entries) if args.reuse else None
    if reused is not None:
        # Migrations added since are applied (they derive new read-model rows themselves).
        from evotrack.migrations import upgrade_to_head

        upgrade_to_head(found.database_url)
        row = Row("G generate (COPY)", "reused the previous run's data")
        return reused, row, []
    recreate_database(found)
    started = time.perf_counter()
    counts, org_ids = generate(found.database_url, Options(args.entries, seed=args.seed))
    total = time.perf_counter() - started
    row = Row(
        "G generate (COPY)",
        f"{counts.copy_rate:,.0f} entries/s ({counts.copy_seconds:.1f} s)",
        target=f"≥ {GENERATE_TARGET:,} entries/s",
        met=counts.copy_rate >= GENERATE_TARGET,
    )
    checks = "row by row" if counts.foreign_keys_checked else "by construction (triggers off)"
    notes = [
        f"G: {counts.entries:,} entries ({counts.running_timers} running timers, "
        f"{counts.entry_tags:,} tag links) for {counts.users:,} users in "
        f"{counts.organizations} organizations, {counts.projects} projects, {counts.tasks} "
        f"tasks; COPY through 2 connections, foreign keys {checks}. Whole generation "
        f"including VACUUM ANALYZE and the first rebuild: {total:.0f} s.",
    ]
    return org_ids, row, notes


def run(args: Arguments) -> str:
    load_at_start = load_average()
    with services() as found:
        org_ids, generate_row, notes = prepare_data(found, args)
        ctx = Context(
            found.database_url, found.redis_url, PROFILES[args.profile], args.entries, org_ids
        )
        rows = [generate_row]
        try:
            for name in args.only:
                print(f"bench: running {name}", file=sys.stderr)
                outcome: Outcome = BENCHMARKS[name](ctx)
                rows += outcome.rows
                notes += outcome.notes
        finally:
            ctx.close()
        described = machine(
            server_facts(found.database_url),
            _redis_version(found.redis_url),
            found.embedded,
            load_at_start,
        )
    text = document(args.profile, args.entries, rows, notes, described)
    path = write(text)
    print(table(rows))
    print(f"\nwritten to {path}", file=sys.stderr)
    return text


def _redis_version(url: str) -> str:
    try:
        return str(redis.Redis.from_url(url).info("server").get("redis_version", "?"))
    except redis.RedisError:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
