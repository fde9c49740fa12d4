"""B3: how long after a command's response its write is visible in the query API, under a
steady write load at 25 %, 50 % and 80 % of B1's maximum rate; p50 and p99.

The query API answers a request carrying the response's `X-Consistency-Token` once every
projection it reads (catalog and entries) has a watermark past the token's transaction
id. So the write is visible at the first moment those watermarks pass it: a thread polls
`projection_checkpoints` every 5 ms and stamps each pending token then. The projection
worker runs as in production (`python -m worker.main`, woken by the commands' doorbell).
The floor is the same lag with one write at a time on an otherwise idle system.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import httpx
import psutil
import psycopg

from bench.b1_writes import MAX_RATE, Written, api_steps, writers_of
from bench.cleanup import catch_up, empty_wakeup_queue, forget_entries, last_change_id
from bench.context import Context
from bench.cpu import CpuUse, cpu_use, postmaster
from bench.generate import plain_url
from bench.load import LoadRun, Step, closed_loop, data_of, expect, http_clients, steady
from bench.report import Outcome, Row, ms, percentile
from bench.servers import COMMAND_APP, api_server, worker_process
from bench.world import Entries, Organization, biggest_organization
from shared.consistency import decode_consistency_token

LOADS = (0.25, 0.50, 0.80)
CHECKED_LOAD = 0.50
CLIENTS = 16
IDLE_WRITES = 20
POLL_SECONDS = 0.005
READY_TIMEOUT_SECONDS = 120.0  # the worker starting and catching up
DRAIN_TIMEOUT_SECONDS = 120.0
P50_TARGET_SECONDS = 0.050  # issue 15: at 50 % of the leaner write path's maximum
P99_TARGET_SECONDS = 0.250
PROJECTIONS = ("catalog", "entries")  # what the query API's entry reads wait for


class Visibility:
    """Stamps each registered consistency token with the moment the projections' watermarks
    pass it. Lags are measured from the response, so a token already passed when first
    polled counts as 0."""

    def __init__(self, database_url: str, names: Sequence[str] = PROJECTIONS) -> None:
        self.database_url = database_url
        self.names = list(names)
        self.pending: list[tuple[int, int]] = []  # (xid, handle), a heap
        self.responded: list[float] = []
        self.seen: dict[int, float] = {}
        self.condition = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.polls = 0

    def __enter__(self) -> Visibility:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self.thread.join()

    def register(self, token: str, responded: float) -> int:
        xid = decode_consistency_token(token)
        if xid is None:
            raise RuntimeError(f"not a consistency token: {token!r}")
        with self.condition:
            handle = len(self.responded)
            self.responded.append(responded)
            heapq.heappush(self.pending, (xid, handle))
            return handle

    def lags(self, handles: Sequence[int], timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        with self.condition:
            while not all(h in self.seen for h in handles):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sum(1 for h in handles if h not in self.seen)
                    raise RuntimeError(f"{missing} writes not visible after {timeout:g} s")
                self.condition.wait(left)
            return [self.seen[h] for h in handles]

    def _poll(self) -> None:
        with psycopg.connect(plain_url(self.database_url), autocommit=True) as conn:
            while not self.stopping.is_set():
                rows = conn.execute(
                    "SELECT watermark::text FROM projection_checkpoints WHERE name = ANY(%s)",
                    (self.names,),
                ).fetchall()
                now = time.perf_counter()
                self.polls += 1
                if len(rows) == len(self.names):
                    self._passed(min(int(row[0]) for row in rows), now)
                self.stopping.wait(POLL_SECONDS)

    def _passed(self, watermark: int, now: float) -> None:
        with self.condition:
            changed = False
            while self.pending and self.pending[0][0] < watermark:
                _, handle = heapq.heappop(self.pending)
                self.seen[handle] = max(0.0, now - self.responded[handle])
                changed = True
            if changed:
                self.condition.notify_all()


@dataclass
class Level:
    share: float  # of B1's maximum; 0 for the idle floor
    target_rate: float
    load: LoadRun
    lags: list[float]
    cpu: CpuUse | None = None

    @property
    def p50(self) -> float:
        return percentile(self.lags, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.lags, 0.99)


class Writes:
    """Clients that write entries and register each response's token."""

    def __init__(self, org: Organization, seen: Visibility, written: Written) -> None:
        self.org = org
        self.seen = seen
        self.written = written
        self.handles: list[int] = []
        self.lock = threading.Lock()
        self.seed = 100

    def steps(self, clients: Sequence[httpx.Client]) -> list[Step]:
        self.seed += 1
        path = self.org.path("/time-entries")

        def step_for(index: int, client: httpx.Client) -> Step:
            writers = writers_of(self.org, index, len(clients))
            entries = Entries(self.org, self.seed * 1000 + index)

            def step() -> None:
                writer = next(writers)
                response = client.post(path, json=entries.body(writer), headers=writer.headers)
                responded = time.perf_counter()
                self.written.add(data_of(expect(response, 201))["id"])
                handle = self.seen.register(response.headers["X-Consistency-Token"], responded)
                with self.lock:
                    self.handles.append(handle)

            return step

        return [step_for(i, client) for i, client in enumerate(clients)]

    def take(self) -> list[int]:
        with self.lock:
            handles, self.handles = self.handles, []
        return handles


def idle_lags(writes: Writes, root: str, count: int) -> Level:
    """One write at a time, each waited for until visible."""
    lags: list[float] = []
    with http_clients(root, 1) as http:
        step = writes.steps(http)[0]
        started = time.perf_counter()
        for _ in range(count):
            step()
            lags += writes.seen.lags(writes.take(), DRAIN_TIMEOUT_SECONDS)
        seconds = time.perf_counter() - started
    return Level(0.0, 0.0, LoadRun(count, seconds, []), lags)


def estimate_max_rate(ctx: Context, org: Organization, root: str, written: Written) -> float:
    """B1's figure when B1 did not run: 16 clients, closed loop, no worker."""
    with http_clients(root, CLIENTS) as http:
        return closed_loop(api_steps(http, org, written, 99), ctx.profile.load_seconds).per_second


def run(ctx: Context) -> Outcome:
    org = biggest_organization(ctx.database_url)
    since = last_change_id(ctx.database_url)
    written = Written()
    levels: list[Level] = []
    postgres = postmaster(ctx.database_url)
    max_rate = ctx.figures.get(MAX_RATE)
    estimated = max_rate is None
    try:
        with api_server(ctx, COMMAND_APP, "command-api") as api:
            if max_rate is None:
                max_rate = estimate_max_rate(ctx, org, api.root, written)
            empty_wakeup_queue(ctx)
            catch_up(ctx)  # the worker starts with nothing to do
            with worker_process(ctx) as worker, Visibility(ctx.database_url) as seen:
                writes = Writes(org, seen, written)
                with http_clients(api.root, 1) as http:  # the worker is up and caught up
                    writes.steps(http)[0]()
                    seen.lags(writes.take(), READY_TIMEOUT_SECONDS)
                levels.append(idle_lags(writes, api.root, IDLE_WRITES))
                meter = {"API process": api.psutil, "worker": psutil.Process(worker.pid)}
                for share in LOADS:
                    rate = share * max_rate
                    with http_clients(api.root, CLIENTS) as http, cpu_use(meter, postgres) as use:
                        load = steady(writes.steps(http), rate, ctx.profile.lag_seconds)
                    lags = seen.lags(writes.take(), DRAIN_TIMEOUT_SECONDS)
                    levels.append(Level(share, rate, load, lags, use))
    finally:
        forget_entries(ctx, written.ids, since)
        empty_wakeup_queue(ctx)
    idle = levels[0]
    rows = [
        Row(
            "B3 write → visible lag, idle (one write at a time)",
            f"p50 {ms(idle.p50)}, p99 {ms(idle.p99)}",
            target="information (the floor of the rows below)",
        )
    ]
    rows += [_row(level, idle) for level in levels[1:]]
    return Outcome(rows, _notes(ctx, max_rate, estimated, levels))


def _row(level: Level, idle: Level) -> Row:
    checked = level.share == CHECKED_LOAD
    met = level.p50 <= P50_TARGET_SECONDS and level.p99 <= P99_TARGET_SECONDS
    return Row(
        f"B3 write → visible lag at {level.share:.0%} of B1's max "
        f"({level.load.per_second:,.0f} of {level.target_rate:,.0f} writes/s achieved)",
        f"p50 {ms(level.p50)}, p99 {ms(level.p99)}",
        f"idle: p50 {ms(idle.p50)}, p99 {ms(idle.p99)}",
        f"{level.p50 / idle.p50:.2f}× idle p50" if idle.p50 > 0 else "—",
        f"p50 ≤ {ms(P50_TARGET_SECONDS)}, p99 ≤ {ms(P99_TARGET_SECONDS)}" if checked else "—",
        met if checked else None,
    )


def _notes(ctx: Context, max_rate: float, estimated: bool, levels: list[Level]) -> list[str]:
    source = (
        "estimated here (B1 did not run: 16 clients, closed loop)"
        if estimated
        else "B1's best median rate in this run"
    )
    details = "; ".join(
        f"{level.share:.0%}: {len(level.lags)} writes, write latency p50 "
        f"{ms(level.load.p50)} p99 {ms(level.load.p99)}, CPU "
        f"{level.cpu.describe() if level.cpu else '?'}"
        for level in levels[1:]
    )
    return [
        f"B3: the command API and the projection worker (`python -m worker.main`, woken by "
        "the commands' RQ doorbell) run as separate processes; the maximum rate "
        f"({max_rate:,.0f} writes/s) is {source}. Each level is an open loop of "
        f"{ctx.profile.lag_seconds:g} s: writes due at a fixed rate, sent by whichever of "
        f"{CLIENTS} client threads is free (entries as in B1). Lag: from the moment the "
        "client has the response to the first poll (every 5 ms, one thread, "
        "`projection_checkpoints`) that sees the catalog and entries watermarks past the "
        "response's X-Consistency-Token xid — exactly when a read carrying the token "
        "would be answered (the query API itself re-checks every 20 ms). The idle floor: "
        f"{IDLE_WRITES} writes one at a time, each waited for. Written entries are "
        "deleted afterwards (projected ones through a 'deleted' change).",
        f"B3 per level (CPU in cores busy, ≈): {details}.",
    ]
