"""`python -m bench.profile_writes`: where the command API spends the time of a write.

Starts the command API with one worker process (so one process serves every request),
loads it with B1's load (wrk, 16 connections writing entries as distinct members of the
biggest organization) and records that process with py-spy meanwhile. Prints the
functions with the most samples, by their own time and with what they call, as markdown.
Runs on the data `python -m bench` generated (`evotrack_bench` on DATABASE_URL's server;
REDIS_URL for the doorbell); the entries it writes are deleted afterwards.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import servers, wrk
from bench.b1_writes import api_requests, entries_written_since
from bench.cleanup import empty_wakeup_queue, forget_entries, last_change_id
from bench.context import PROFILES, Context
from bench.servers import COMMAND_APP, api_server
from bench.services import BENCH_DATABASE, database_on
from bench.world import biggest_organization

TOP = 25


@dataclass(frozen=True)
class Profile:
    samples: int
    own: list[tuple[str, int]]
    total: list[tuple[str, int]]


def summarize(raw: str, top: int = TOP) -> Profile:
    """py-spy's raw (collapsed) stacks: `frame;frame;… count` per line, outermost first."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return Profile(samples, own.most_common(top), total.most_common(top))


def _short(frame: str) -> str:
    """`function (path/to/module.py:line)` → `function (module.py)`: lines differ by sample."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(Path(path).parts[-2:])})"


def markdown(profile: Profile, rate: float, *, connections: int = 16, waits: bool = False) -> str:
    def table(rows: list[tuple[str, int]]) -> list[str]:
        lines = ["| function | share of samples |", "|---|---|"]
        lines += [f"| `{name}` | {count / profile.samples:.1%} |" for name, count in rows]
        return lines

    return "\n".join(
        [
            f"{profile.samples:,} samples (200/s, {'every thread' if waits else 'GIL holder only'})"
            " of the command API's process at "
            f"{rate:,.0f} entries/s (wrk, {connections} connections, distinct users).",
            "",
            "Own time (the function itself):",
            "",
            *table(profile.own),
            "",
            "With what it calls:",
            "",
            *table(profile.total),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--waits",
        action="store_true",
        help="sample every thread, idle or not (where requests wait), not only the GIL holder",
    )
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks in this file")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL")
    redis = os.environ.get("REDIS_URL")
    if not server or not redis:
        print("set DATABASE_URL and REDIS_URL (the servers `python -m bench` used)")
        return 2
    servers.API_WORKERS = 1  # one process serves every request: the one py-spy records
    ctx = Context(database_on(server, BENCH_DATABASE), redis, PROFILES["quick"], 0, [])
    org = biggest_organization(ctx.database_url)
    since = last_change_id(ctx.database_url)
    try:
        with api_server(ctx, COMMAND_APP, "profile-api") as api, tempfile.TemporaryDirectory() as d:
            worker = _worker_pid(api.process.pid)
            wrk.run(api.root, api_requests(org, 4, 1, one_user=False), 2)  # warm up
            raw = Path(d) / "profile.txt"
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw"]
                + ["--pid", str(worker), "--duration", f"{args.seconds:g}", "--rate", "200"]
                # Only the thread holding the GIL: where the process's Python time goes, not
                # the threads waiting for the database or for the GIL.
                + ["--output", str(raw), "--nonblocking"]
                + (["--idle"] if args.waits else ["--gil"]),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            requests = api_requests(org, args.connections, 2, one_user=False)
            run = wrk.run(api.root, requests, args.seconds)
            spy.wait()
            if args.raw:
                args.raw.write_text(raw.read_text())
            print(
                markdown(
                    summarize(raw.read_text()),
                    run.per_second,
                    connections=args.connections,
                    waits=args.waits,
                )
            )
    finally:
        forget_entries(ctx, entries_written_since(ctx, since), since)
        empty_wakeup_queue(ctx)
    return 0


def _worker_pid(parent: int) -> int:
    """The process serving requests: uvicorn itself, or its worker when it supervises one."""
    children = psutil.Process(parent).children(recursive=True)
    workers = [c for c in children if "python" in c.name().lower()] or children
    return workers[0].pid if workers else parent


if __name__ == "__main__":
    sys.exit(main())
