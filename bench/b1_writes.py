"""B1: `POST /organizations/{org}/time-entries` at 1, 4, 16 and 64 connections, entries/s
with p50 and p99 latency, driven by wrk (bench/wrk.py: a compiled load generator, its CPU
share reported), both as distinct users and as one user; beside it in the same run, the
ceilings of the same app (`GET /health`, and the no-op POST of `bench.noop_app`) and the
floor, a plain psycopg loop writing the same entry row and change row (one transaction per
entry, same concurrency).

Each connection writes as its own members of the biggest organization in turn (entries of
one user are serialized by the command, a lock on the user; entries of different users are
not), or every connection as the same member (an importer, a sync client, a script).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import psycopg

from bench import wrk
from bench.cleanup import empty_wakeup_queue, forget_entries, last_change_id
from bench.context import Context
from bench.cpu import CpuUse, cpu_use, postmaster
from bench.generate import plain_url
from bench.load import LoadRun, Step, closed_loop, data_of, expect
from bench.noop_app import NOOP_PATH
from bench.report import Outcome, Row, median, ms
from bench.servers import API_WORKERS, COMMAND_APP, NOOP_APP, Server, api_server
from bench.world import (
    CHANGE_COLUMNS,
    ENTRY_COLUMNS,
    Entries,
    Organization,
    Writer,
    biggest_organization,
    change_row,
    entry_row,
)

LEVELS = (1, 4, 16, 64)
CHECKED_LEVEL = 16
# Bodies per connection, sent in turn (a repeated body is one more entry: overlaps are allowed).
REQUESTS_PER_CONNECTION = 64
WARM_UP_SECONDS = 1.0
FLOOR_SHARE_TARGET = 0.5  # at 16 clients, at least half the floor's rate
P99_TARGET_SECONDS = 0.050
MAX_RATE = "B1 max entries/s"  # left in ctx.figures for B3

INSERT_ENTRY = f"INSERT INTO time_entries ({ENTRY_COLUMNS}) VALUES ({', '.join(['%s'] * 10)})"
INSERT_CHANGE = f"INSERT INTO changes ({CHANGE_COLUMNS}) VALUES (%s, %s, %s, %s, %s)"


class Written:
    """Ids of the entries a run wrote, from any thread."""

    def __init__(self) -> None:
        self.ids: list[object] = []
        self.lock = threading.Lock()

    def add(self, entry_id: object) -> None:
        with self.lock:
            self.ids.append(entry_id)


def writers_of(org: Organization, client: int, clients: int) -> Iterator[Writer]:
    """The members client `client` of `clients` writes as, in turn (disjoint sets)."""
    own = org.writers[client::clients] or [org.writers[client % len(org.writers)]]
    return itertools.cycle(own)


def api_steps(
    clients: Sequence[httpx.Client], org: Organization, written: Written, seed: int
) -> list[Step]:
    def step_for(index: int, client: httpx.Client) -> Step:
        writers = writers_of(org, index, len(clients))
        entries = Entries(org, seed * 1000 + index)
        path = org.path("/time-entries")

        def step() -> None:
            writer = next(writers)
            response = client.post(path, json=entries.body(writer), headers=writer.headers)
            written.add(data_of(expect(response, 201))["id"])

        return step

    return [step_for(i, client) for i, client in enumerate(clients)]


def _post(path: str, writer: Writer, body: object) -> wrk.Request:
    headers = {**writer.headers, "Content-Type": "application/json"}
    return wrk.Request("POST", path, headers, json.dumps(body))


def api_requests(
    org: Organization, connections: int, seed: int, *, one_user: bool, path: str | None = None
) -> list[list[wrk.Request]]:
    """Each connection's bodies: as its own members in turn, or all as the first writer."""
    lists = []
    for index in range(connections):
        writers = (
            itertools.repeat(org.writers[0]) if one_user else writers_of(org, index, connections)
        )
        entries = Entries(org, seed * 1000 + index)
        target = path or org.path("/time-entries")
        lists.append(
            [
                _post(target, writer, entries.body(writer))
                for writer in itertools.islice(writers, REQUESTS_PER_CONNECTION)
            ]
        )
    return lists


def health_requests(connections: int) -> list[list[wrk.Request]]:
    return [[wrk.Request("GET", "/health", {})] for _ in range(connections)]


def floor_steps(
    connections: Sequence[psycopg.Connection[object]],
    org: Organization,
    written: Written,
    seed: int,
) -> list[Step]:
    def step_for(index: int, conn: psycopg.Connection[object]) -> Step:
        writers = writers_of(org, index, len(connections))
        entries = Entries(org, seed * 1000 + index)

        def step() -> None:
            writer = next(writers)
            row = entry_row(org.id, writer.user_id, entries.body(writer))
            conn.execute(INSERT_ENTRY, row)
            conn.execute(INSERT_CHANGE, change_row(row))
            conn.commit()
            written.add(row[0])

        return step

    return [step_for(i, conn) for i, conn in enumerate(connections)]


@contextlib.contextmanager
def connections(database_url: str, count: int) -> Iterator[list[psycopg.Connection[object]]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(psycopg.connect(plain_url(database_url))) for _ in range(count)]


@dataclass
class Level:
    clients: int
    api: list[wrk.WrkRun] = field(default_factory=list)  # distinct users
    one_user: list[wrk.WrkRun] = field(default_factory=list)
    floor: list[LoadRun] = field(default_factory=list)
    health: list[wrk.WrkRun] = field(default_factory=list)
    noop: list[wrk.WrkRun] = field(default_factory=list)
    cpu: CpuUse | None = None  # during the last API run

    @staticmethod
    def rate(runs: Sequence[LoadRun | wrk.WrkRun]) -> float:
        return median([r.per_second for r in runs])

    @staticmethod
    def p50(runs: Sequence[LoadRun | wrk.WrkRun]) -> float:
        return median([r.p50 for r in runs])

    @staticmethod
    def p99(runs: Sequence[LoadRun | wrk.WrkRun]) -> float:
        return median([r.p99 for r in runs])

    @staticmethod
    def client_cores(runs: Sequence[wrk.WrkRun]) -> float:
        return max(r.client_cores for r in runs)


class Bench:
    def __init__(self, ctx: Context, org: Organization, api: Server, noop: Server) -> None:
        self.ctx = ctx
        self.org = org
        self.api = api
        self.noop = noop
        self.postgres = postmaster(ctx.database_url)
        self.written = Written()  # the floor's entries (the API's are found in the log)
        self.seed = 0

    def _seed(self) -> int:
        self.seed += 1
        return self.seed

    def api_run(
        self, clients: int, seconds: float, *, one_user: bool = False, cpu: bool = False
    ) -> tuple[wrk.WrkRun, CpuUse]:
        requests = api_requests(self.org, clients, self._seed(), one_user=one_user)
        meter = {"API process": self.api.psutil}
        with cpu_use(meter if cpu else {}, self.postgres if cpu else None) as use:
            run = wrk.run(self.api.root, requests, seconds)
        return run, use

    def noop_run(self, clients: int, seconds: float) -> wrk.WrkRun:
        requests = api_requests(self.org, clients, self._seed(), one_user=False, path=NOOP_PATH)
        return wrk.run(self.noop.root, requests, seconds)

    def health_run(self, clients: int, seconds: float) -> wrk.WrkRun:
        return wrk.run(self.api.root, health_requests(clients), seconds)

    def floor_run(self, clients: int, seconds: float) -> LoadRun:
        with connections(self.ctx.database_url, clients) as conns:
            return closed_loop(floor_steps(conns, self.org, self.written, self._seed()), seconds)

    def warm_up(self) -> None:
        self.api_run(4, WARM_UP_SECONDS)
        self.noop_run(4, WARM_UP_SECONDS)
        self.floor_run(4, WARM_UP_SECONDS)

    def level(self, clients: int) -> Level:
        """Runs of the floor, the ceilings and the API in turn, so that a slow moment of
        the machine spreads over all of them."""
        level = Level(clients)
        seconds = self.ctx.profile.load_seconds
        for i in range(self.ctx.runs):
            level.floor.append(self.floor_run(clients, seconds))
            level.health.append(self.health_run(clients, seconds))
            level.noop.append(self.noop_run(clients, seconds))
            level.one_user.append(self.api_run(clients, seconds, one_user=True)[0])
            run, use = self.api_run(clients, seconds, cpu=i == self.ctx.runs - 1)
            level.api.append(run)
            level.cpu = use
        return level


def run(ctx: Context) -> Outcome:
    if not wrk.available():
        raise RuntimeError("B1 needs wrk, a compiled load generator: apt-get install wrk")
    org = biggest_organization(ctx.database_url)
    since = last_change_id(ctx.database_url)
    levels: list[Level] = []
    bench: Bench | None = None
    try:
        with (
            api_server(ctx, COMMAND_APP, "command-api") as api,
            api_server(ctx, NOOP_APP, "noop-api") as noop,
        ):
            bench = Bench(ctx, org, api, noop)
            bench.warm_up()
            for clients in LEVELS:
                levels.append(bench.level(clients))
    finally:
        written = entries_written_since(ctx, since)
        if bench is not None:
            written += bench.written.ids
        forget_entries(ctx, written, since)
        empty_wakeup_queue(ctx)
    ctx.figures[MAX_RATE] = max(Level.rate(level.api) for level in levels)
    rows = [row for level in levels for row in _rows(level)]
    return Outcome(rows, _notes(ctx, org, levels))


def entries_written_since(ctx: Context, since_change: int) -> list[object]:
    """The entries the API wrote during the run: wrk does not read the answers."""
    with psycopg.connect(plain_url(ctx.database_url)) as conn:
        rows = conn.execute(
            "SELECT entity_id FROM changes WHERE id > %s AND entity = 'time_entry'"
            " AND op = 'created'",
            (since_change,),
        )
        return [row[0] for row in rows]


def _rows(level: Level) -> list[Row]:
    floor, health, noop = (Level.rate(runs) for runs in (level.floor, level.health, level.noop))
    ceilings = (
        f"/health {health:,.0f}/s, no-op POST {noop:,.0f}/s; "
        f"floor (psycopg loop) {floor:,.0f}/s, p99 {ms(Level.p99(level.floor))}"
    )
    checked = level.clients == CHECKED_LEVEL
    rows = []
    for label, runs in (("distinct users", level.api), ("one user", level.one_user)):
        rate, p99 = Level.rate(runs), Level.p99(runs)
        rows.append(
            Row(
                f"B1 POST time-entries, {_clients(level.clients)}, {label}",
                f"{rate:,.0f} entries/s, p50 {ms(Level.p50(runs))}, p99 {ms(p99)}"
                f" (wrk ≤ {Level.client_cores(runs):.2f} cores)",
                ceilings,
                f"{rate / noop:.2f}× no-op POST, {rate / floor:.2f}× floor",
                f"p99 ≤ {ms(P99_TARGET_SECONDS)}" if checked else "—",
                (p99 <= P99_TARGET_SECONDS) if checked else None,
            )
        )
    return rows


def _clients(count: int) -> str:
    return f"{count} connection{'s' if count > 1 else ''}"


def _notes(ctx: Context, org: Organization, levels: list[Level]) -> list[str]:
    def rates(runs: Sequence[LoadRun | wrk.WrkRun]) -> str:
        return ", ".join(f"{r.per_second:,.0f}" for r in runs)

    runs = "; ".join(
        f"{_clients(level.clients)}: distinct users {rates(level.api)}, one user "
        f"{rates(level.one_user)}, /health {rates(level.health)}, no-op POST "
        f"{rates(level.noop)}, floor {rates(level.floor)}"
        for level in levels
    )
    cpu = "; ".join(
        f"{_clients(level.clients)}: {level.cpu.describe()}" for level in levels if level.cpu
    )
    return [
        f"B1: the command API (`uvicorn command_api.main:create_app --factory`, {API_WORKERS} "
        "worker processes, no access log, as `evotrack run` starts it) on the benchmark's "
        f"data; {ctx.runs} runs of {ctx.profile.load_seconds:g} s per level and per variant, "
        "interleaved (floor, /health, no-op POST, one user, distinct users), after a 1 s "
        "warm-up; figures are medians of the runs' rates and of the runs' p50/p99. The load "
        "comes from wrk (one thread per connection, keep-alive), whose CPU is reported "
        "beside each figure (the most of any run, in cores). Distinct users: each connection "
        f"writes as its own members of the biggest organization ({org.members} members; "
        f"{len(org.writers)} writers used) in turn; one user: every connection as the same "
        "member. Finished entries of 15–120 min in the last 28 days on one of the member's "
        f"projects, {REQUESTS_PER_CONNECTION} bodies per connection sent in turn, a JWT "
        "minted for each member. Entries written by B1 are deleted afterwards with their "
        "unprojected change rows. Runs (entries or requests/s): " + runs + ".",
        "B1 floor: one psycopg connection per client (threads of the benchmark process), "
        "each entry `INSERT INTO time_entries …; INSERT INTO changes … (payload old/new as "
        "the command writes it); COMMIT`: what any implementation must do. Ceilings: "
        "`GET /health` of the same app, and `POST /bench/noop` of `bench.noop_app` (the "
        "same app plus one route that parses the JSON body and answers 201, no "
        "authentication, no database), served the same way: what the HTTP stack and the "
        "app's middleware cost per request.",
        f"B1 CPU during the last API run of each level, in cores busy (≈; 2 cores): {cpu}.",
    ]
