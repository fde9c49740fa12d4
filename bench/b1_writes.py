"""B1: `POST /organizations/{org}/time-entries` at 1, 4 and 16 concurrent clients,
entries/s with p50 and p99 latency; against its floor, a plain psycopg loop writing the
same entry row and change row (one transaction per entry, same concurrency), and its
ceiling, a no-op endpoint of the same app (`bench.noop_app`).

Each client is a thread with its own keep-alive connection (or database connection), and
writes as several members of the biggest organization in turn: entries of one user are
serialized by the command (a lock on the user), entries of different users are not.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx
import psycopg

from bench.cleanup import empty_wakeup_queue, forget_entries, last_change_id
from bench.context import Context
from bench.cpu import CpuUse, cpu_use, postmaster
from bench.generate import plain_url
from bench.load import LoadRun, Step, closed_loop, data_of, expect, http_clients
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

LEVELS = (1, 4, 16)
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


def noop_steps(clients: Sequence[httpx.Client], org: Organization, seed: int) -> list[Step]:
    def step_for(index: int, client: httpx.Client) -> Step:
        writers = writers_of(org, index, len(clients))
        entries = Entries(org, seed * 1000 + index)

        def step() -> None:
            writer = next(writers)
            expect(client.post(NOOP_PATH, json=entries.body(writer), headers=writer.headers), 201)

        return step

    return [step_for(i, client) for i, client in enumerate(clients)]


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
    api: list[LoadRun] = field(default_factory=list)
    floor: list[LoadRun] = field(default_factory=list)
    ceiling: list[LoadRun] = field(default_factory=list)
    cpu: CpuUse | None = None  # during the last API run

    @staticmethod
    def rate(runs: list[LoadRun]) -> float:
        return median([r.per_second for r in runs])

    @staticmethod
    def p50(runs: list[LoadRun]) -> float:
        return median([r.p50 for r in runs])

    @staticmethod
    def p99(runs: list[LoadRun]) -> float:
        return median([r.p99 for r in runs])


class Bench:
    def __init__(self, ctx: Context, org: Organization, api: Server, noop: Server) -> None:
        self.ctx = ctx
        self.org = org
        self.api = api
        self.noop = noop
        self.written = Written()
        self.postgres = postmaster(ctx.database_url)
        self.seed = 0

    def _seed(self) -> int:
        self.seed += 1
        return self.seed

    def api_run(self, clients: int, seconds: float, cpu: bool = False) -> tuple[LoadRun, CpuUse]:
        with http_clients(self.api.root, clients) as http:
            steps = api_steps(http, self.org, self.written, self._seed())
            meter = {"API process": self.api.psutil}
            with cpu_use(meter if cpu else {}, self.postgres if cpu else None) as use:
                run = closed_loop(steps, seconds)
        return run, use

    def noop_run(self, clients: int, seconds: float) -> LoadRun:
        with http_clients(self.noop.root, clients) as http:
            return closed_loop(noop_steps(http, self.org, self._seed()), seconds)

    def floor_run(self, clients: int, seconds: float) -> LoadRun:
        with connections(self.ctx.database_url, clients) as conns:
            return closed_loop(floor_steps(conns, self.org, self.written, self._seed()), seconds)

    def warm_up(self) -> None:
        self.api_run(4, WARM_UP_SECONDS)
        self.noop_run(4, WARM_UP_SECONDS)
        self.floor_run(4, WARM_UP_SECONDS)

    def level(self, clients: int) -> Level:
        """Runs of the floor, the ceiling and the API in turn, so that a slow moment of
        the machine spreads over all three."""
        level = Level(clients)
        seconds = self.ctx.profile.load_seconds
        for i in range(self.ctx.runs):
            level.floor.append(self.floor_run(clients, seconds))
            level.ceiling.append(self.noop_run(clients, seconds))
            run, use = self.api_run(clients, seconds, cpu=i == self.ctx.runs - 1)
            level.api.append(run)
            level.cpu = use
        return level


def run(ctx: Context) -> Outcome:
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
        if bench is not None:
            forget_entries(ctx, bench.written.ids, since)
        empty_wakeup_queue(ctx)
    ctx.figures[MAX_RATE] = max(Level.rate(level.api) for level in levels)
    return Outcome([_row(level) for level in levels], _notes(ctx, org, levels))


def _row(level: Level) -> Row:
    rate, floor, ceiling = Level.rate(level.api), Level.rate(level.floor), Level.rate(level.ceiling)
    p99 = Level.p99(level.api)
    checked = level.clients == LEVELS[-1]
    return Row(
        f"B1 POST time-entries, {_clients(level.clients)}",
        f"{rate:,.0f} entries/s, p50 {ms(Level.p50(level.api))}, p99 {ms(p99)}",
        f"floor (psycopg loop) {floor:,.0f}/s, p99 {ms(Level.p99(level.floor))}; "
        f"ceiling (no-op endpoint) {ceiling:,.0f}/s",
        f"{rate / floor:.2f}× floor, {rate / ceiling:.2f}× ceiling",
        f"≥ {FLOOR_SHARE_TARGET:g}× floor and p99 ≤ {ms(P99_TARGET_SECONDS)}" if checked else "—",
        (rate / floor >= FLOOR_SHARE_TARGET and p99 <= P99_TARGET_SECONDS) if checked else None,
    )


def _clients(count: int) -> str:
    return f"{count} client{'s' if count > 1 else ''}"


def _notes(ctx: Context, org: Organization, levels: list[Level]) -> list[str]:
    runs = "; ".join(
        f"{_clients(level.clients)}: API "
        f"{', '.join(f'{r.per_second:,.0f}' for r in level.api)}, floor "
        f"{', '.join(f'{r.per_second:,.0f}' for r in level.floor)}, ceiling "
        f"{', '.join(f'{r.per_second:,.0f}' for r in level.ceiling)}"
        for level in levels
    )
    cpu = "; ".join(
        f"{_clients(level.clients)}: {level.cpu.describe()}" for level in levels if level.cpu
    )
    return [
        f"B1: the command API (`uvicorn command_api.main:create_app --factory`, {API_WORKERS} "
        "worker processes, "
        f"no access log, as `evotrack run` starts it) on the benchmark's data; {ctx.runs} "
        f"runs of {ctx.profile.load_seconds:g} s per level and per variant, interleaved "
        "(floor, ceiling, API), after a 1 s warm-up of each; figures are medians of the "
        "runs' rates and of the runs' p50/p99. Clients are threads of the benchmark "
        "process, each with one keep-alive httpx connection (the load generator shares the "
        f"2 cores). Each client writes as its own members of the biggest organization "
        f"({org.members} members; {len(org.writers)} writers used) in turn: finished "
        "entries of 15–120 min in the last 28 days on one of the member's projects, "
        "JWT minted for each member. Entries written by B1 (API and floor) are deleted "
        "afterwards with their unprojected change rows. Runs (entries/s): " + runs + ".",
        "B1 floor: one psycopg connection per client, each entry `INSERT INTO time_entries "
        "…; INSERT INTO changes … (payload old/new as the command writes it); COMMIT`: "
        "what any implementation must do. Ceiling: `POST /bench/noop` of `bench.noop_app` "
        "(the same app plus one route that parses the JSON body and answers 201, no "
        "authentication, no database), served the same way: what the HTTP stack, the app's "
        "middleware and the load generator cost per request.",
        f"B1 CPU during the last API run of each level, in cores busy (≈; 2 cores): {cpu}.",
    ]
