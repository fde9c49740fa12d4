"""B9: webhook fan-out. W webhooks (1, 4, 16) of the biggest organization, subscribed to
`time_entry.created` and pointed at a local receiver that answers 204 at once (uvicorn, a
process of its own); EVENTS entries created by COPY with their change rows. The projection
worker (`--role projections`) makes one delivery per event and webhook, two webhook
workers (`--role webhooks`, as `evotrack run` starts them) send them. Deliveries per second
from the first delivery made to the last delivered, and p50/p99 of each delivery's made →
delivered time; beside B7's no-op RQ job rate measured in the same run (a webhook job sends
up to 100 deliveries, so fan-out is not bound by the job rate)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
import psycopg
import redis
from rq import Queue
from rq.worker import SimpleWorker

from bench.b2_bulk import copy_run
from bench.b7_worker import JOBS, _log_to_file, jobs_per_second
from bench.cleanup import catch_up, empty_wakeup_queue, forget_entries, last_change_id
from bench.context import Context
from bench.cpu import CpuUse, cpu_use, postmaster
from bench.generate import plain_url
from bench.report import Outcome, Row, median, ms, times
from bench.servers import Server, _product, _spawn, _wait_healthy, child_env, stop
from bench.world import Entries, Organization, biggest_organization
from evotrack.embedded import free_port
from shared.config import get_settings
from shared.redis_client import WAKEUP_JOB

FAN_OUT = (1, 4, 16)  # webhooks per case
# Entries created per case, one COPY transaction per BATCH. At most 8,191 deliveries a
# projection batch for now: create_deliveries binds 8 parameters a row in one INSERT, and
# past 65,535 the webhooks projection retries forever (results/issue16-webhooks.md).
EVENTS = 500
BATCH = 1_000
WARM_UP_EVENTS = 10  # to two webhooks: both senders and the projection worker are warm
EVENT = "time_entry.created"
WEBHOOK_WORKERS = 2
POLL_SECONDS = 0.1
STALL_SECONDS = 20.0  # no delivery made or sent for so long: the case is given up
RECEIVER = "bench.b9_webhooks:receiver"

# --- The no-op job rate -------------------------------------------------------------------


class BurstWorker(SimpleWorker):
    """B7's SimpleWorker without its command channel (pubsub), which a burst never uses: at
    exit RQ 3 unsubscribes, then joins the pubsub thread with redis-py 8's `stop()`, which
    waits out the thread's `get_message(timeout=60)` when the thread read the unsubscribe
    reply first. Seen here under load: a burst of 500 jobs timed at 62 s (8 jobs/s)."""

    def subscribe(self) -> None:
        return None


def noop_job_rate(ctx: Context) -> float:
    """B7's no-op jobs/s (median of the profile's runs)."""
    _log_to_file()
    connection = redis.Redis.from_url(ctx.redis_url)
    jobs = JOBS[SimpleWorker]
    return median([jobs_per_second(connection, BurstWorker, jobs) for _ in range(ctx.runs)])


# --- The receiver -------------------------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Receiver:
    """An ASGI app that answers a POST 204 once it has read the body, and a GET with how
    many POSTs it answered (the sender's at-least-once shows as more than were delivered)."""

    def __init__(self) -> None:
        self.received = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["method"] == "POST":
            self.received += 1
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = str(self.received).encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


receiver = Receiver()


@contextlib.contextmanager
def receiver_process() -> Iterator[Server]:
    """The receiver under uvicorn, one process, until the block ends."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", RECEIVER, "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "off", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = _spawn(command, {**os.environ, "PYTHONUNBUFFERED": "1"}, "webhook-receiver")
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, root, "webhook-receiver")
        yield Server(root, process)
    finally:
        stop(process)


def received(root: str) -> int:
    return int(httpx.get(f"{root}/", timeout=5.0).text)


# --- The product's processes --------------------------------------------------------------


@contextlib.contextmanager
def worker_role(ctx: Context, role: str, name: str) -> Iterator[psutil.Process]:
    """`python -m worker.main --role ROLE` on the benchmark's database, until the block ends
    (development settings: deliveries may go to http:// on this machine)."""
    command, cwd = _product([sys.executable, "-m", "worker.main", "--role", role])
    env = child_env(ctx.database_url, ctx.redis_url) | {"ENVIRONMENT": "development"}
    process = _spawn(command, env, name, cwd)
    try:
        yield psutil.Process(process.pid)
    finally:
        stop(process)


@contextlib.contextmanager
def workers(ctx: Context) -> Iterator[dict[str, psutil.Process]]:
    """The projection worker and WEBHOOK_WORKERS webhook workers, by name."""
    names = {"projection worker": "projections"}
    names |= {f"webhooks {n}": "webhooks" for n in range(1, WEBHOOK_WORKERS + 1)}
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(worker_role(ctx, role, name.replace(" ", "-")))
            for name, role in names.items()
        }


# --- Webhooks and events ------------------------------------------------------------------

# The read side (proj_webhooks) follows webhooks through their change rows, as a command's.
STATE = (
    "jsonb_build_object('url', url, 'events', to_jsonb(events), 'description', description,"
    " 'enabled', enabled, 'disabled_reason', disabled_reason)"
)
CREATE_WEBHOOKS = f"""
    WITH made AS (
        INSERT INTO webhooks (id, org_id, url, events, description, secret, enabled, created_by)
        SELECT gen_random_uuid(), %(org)s, %(url)s || '/hook/' || i, ARRAY[%(event)s],
            'bench B9', 'whsec_bench', true, %(owner)s
        FROM generate_series(1, %(count)s) i
        RETURNING *)
    INSERT INTO changes (org_id, entity, entity_id, op, payload)
    SELECT org_id, 'webhook', id, 'created', jsonb_build_object('old', NULL, 'new', {STATE})
    FROM made RETURNING entity_id
"""
DISABLE_WEBHOOKS = f"""
    WITH moved AS (
        UPDATE webhooks SET enabled = false, version = version + 1, updated_at = now()
        WHERE id = ANY(%(ids)s) RETURNING *)
    INSERT INTO changes (org_id, entity, entity_id, op, payload)
    SELECT org_id, 'webhook', id, 'updated', jsonb_build_object('old', NULL, 'new', {STATE})
    FROM moved
"""
DELETE_WEBHOOKS = f"""
    WITH gone AS (DELETE FROM webhooks WHERE id = ANY(%(ids)s) RETURNING *)
    INSERT INTO changes (org_id, entity, entity_id, op, payload)
    SELECT org_id, 'webhook', id, 'deleted', jsonb_build_object('old', {STATE}, 'new', NULL)
    FROM gone
"""
COUNTS = """
    SELECT count(*), count(*) FILTER (WHERE status = 'pending')
    FROM webhook_deliveries WHERE webhook_id = ANY(%s)
"""
STATS = """
    SELECT count(*),
        extract(epoch FROM max(delivered_at) - min(created_at))::float8,
        extract(epoch FROM max(delivered_at) - min(delivered_at))::float8,
        percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)),
        percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM delivered_at - created_at)),
        sum(attempts) - count(*)
    FROM webhook_deliveries WHERE webhook_id = ANY(%s)
"""


def create_webhooks(ctx: Context, org: Organization, root: str, count: int) -> list[uuid.UUID]:
    params = {"org": org.id, "url": root, "event": EVENT, "owner": org.owner.user_id}
    with psycopg.connect(plain_url(ctx.database_url)) as conn:
        rows = conn.execute(CREATE_WEBHOOKS, params | {"count": count}).fetchall()
    return [row[0] for row in rows]


def change_webhooks(ctx: Context, statement: str, ids: Sequence[uuid.UUID]) -> None:
    if ids:
        with psycopg.connect(plain_url(ctx.database_url)) as conn:
            conn.execute(statement, {"ids": list(ids)})


def create_entries(ctx: Context, org: Organization, count: int, seed: int) -> list[object]:
    """`count` entries of the organization's members by COPY with their change rows (a
    transaction per BATCH, as B2's floor), then the doorbell a command would ring."""
    entries, writers = Entries(org, seed), org.writers
    bodies = [entries.body(writers[i % len(writers)], for_user=True) for i in range(count)]
    batches = [bodies[i : i + BATCH] for i in range(0, count, BATCH)]
    _, ids = copy_run(ctx.database_url, org, batches)
    queue = Queue(get_settings().wakeup_queue, connection=redis.Redis.from_url(ctx.redis_url))
    queue.enqueue(WAKEUP_JOB, job_timeout=600, result_ttl=0, failure_ttl=3600)
    return ids


def wait_delivered(ctx: Context, ids: Sequence[uuid.UUID], expected: int) -> str | None:
    """Wait until all `expected` deliveries of the webhooks `ids` are made and delivered;
    None then, else why not (nothing moved for STALL_SECONDS)."""
    last: tuple[int, int] = (-1, -1)
    moved_at = time.monotonic()
    with psycopg.connect(plain_url(ctx.database_url), autocommit=True) as conn:
        while True:
            made, pending = conn.execute(COUNTS, (list(ids),)).fetchone() or (0, 0)
            if made == expected and not pending:
                return None
            if (made, pending) != last:
                last, moved_at = (made, pending), time.monotonic()
            elif time.monotonic() - moved_at > STALL_SECONDS:
                return (
                    f"stalled: {made:,} of {expected:,} deliveries made, {pending:,} pending, "
                    f"nothing moved for {STALL_SECONDS:g} s (see .evotrack/bench/*.log)"
                )
            time.sleep(POLL_SECONDS)


# --- One case -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FanOut:
    webhooks: int
    cpu: CpuUse
    stalled: str | None = None  # why not every delivery was delivered
    deliveries: int = 0
    seconds: float = 0.0  # the first delivery made → the last delivered
    sending_seconds: float = 0.0  # the first delivered → the last delivered
    p50: float = 0.0  # made → delivered, per delivery
    p99: float = 0.0
    retries: int = 0

    @property
    def per_second(self) -> float:
        return self.deliveries / self.seconds


def fan_out(
    ctx: Context,
    org: Organization,
    root: str,
    count: int,
    meter: dict[str, psutil.Process],
    written: list[object],
    hooks: list[uuid.UUID],
) -> FanOut:
    """Send EVENTS entries' events to `count` new webhooks; they are disabled afterwards."""
    ids = create_webhooks(ctx, org, root, count)
    hooks += ids
    with cpu_use(meter, postmaster(ctx.database_url)) as use:
        written += create_entries(ctx, org, EVENTS, seed=900 + count)
        stalled = wait_delivered(ctx, ids, count * EVENTS)
    change_webhooks(ctx, DISABLE_WEBHOOKS, ids)
    if stalled:
        return FanOut(count, use, stalled)
    with psycopg.connect(plain_url(ctx.database_url)) as conn:
        row = conn.execute(STATS, (ids,)).fetchone()
    if row is None:
        raise RuntimeError("B9: no deliveries")
    return FanOut(count, use, None, *row)


def warm_up(ctx: Context, org: Organization, root: str, written: list[object]) -> list[uuid.UUID]:
    """Two webhooks, a few events: every process has imported and connected what it uses."""
    ids = create_webhooks(ctx, org, root, 2)
    written += create_entries(ctx, org, WARM_UP_EVENTS, seed=899)
    stalled = wait_delivered(ctx, ids, 2 * WARM_UP_EVENTS)
    change_webhooks(ctx, DISABLE_WEBHOOKS, ids)
    if stalled:
        raise RuntimeError(f"B9 warm-up {stalled}")
    return ids


def clean_up(ctx: Context, hooks: list[uuid.UUID], written: list[object], since: int) -> None:
    """With the workers stopped: the webhooks first (their deliveries go with them, and the
    projections then make no more), then the entries, then the queues."""
    with psycopg.connect(plain_url(ctx.database_url)) as conn:
        conn.execute("DELETE FROM proj_webhook_deliveries WHERE webhook_id = ANY(%s)", (hooks,))
    change_webhooks(ctx, DELETE_WEBHOOKS, hooks)
    catch_up(ctx)
    forget_entries(ctx, written, since)
    empty_wakeup_queue(ctx)
    connection = redis.Redis.from_url(ctx.redis_url)
    Queue(get_settings().webhooks_queue, connection=connection).empty()  # type: ignore[no-untyped-call]


def run(ctx: Context) -> Outcome:
    simple = noop_job_rate(ctx)
    org = biggest_organization(ctx.database_url)
    since = last_change_id(ctx.database_url)
    written: list[object] = []
    hooks: list[uuid.UUID] = []
    cases: list[FanOut] = []
    empty_wakeup_queue(ctx)
    catch_up(ctx)  # the projection worker starts with nothing to do
    try:
        with receiver_process() as server, workers(ctx) as processes:
            hooks += warm_up(ctx, org, server.root, written)
            meter = {"receiver": server.psutil, **processes}
            for count in FAN_OUT:
                cases.append(fan_out(ctx, org, server.root, count, meter, written, hooks))
            answered = received(server.root)
    finally:
        clean_up(ctx, hooks, written, since)
    rows = [_row(case, simple) for case in cases]
    return Outcome(rows, _notes(cases, simple, answered))


def _row(case: FanOut, simple: float) -> Row:
    plural = "s" if case.webhooks > 1 else ""
    name = (
        f"B9 webhook fan-out, {case.webhooks} webhook{plural} × {EVENTS:,} events, "
        f"{WEBHOOK_WORKERS} webhook workers"
    )
    reference = f"no-op jobs, SimpleWorker: {simple:,.0f} jobs/s"
    if case.stalled:
        return Row(name, case.stalled, reference, target="every delivery delivered", met=False)
    return Row(
        name,
        f"{case.per_second:,.0f} deliveries/s; made → delivered p50 {ms(case.p50)}, "
        f"p99 {ms(case.p99)}",
        reference,
        times(case.per_second / simple),
        "information (beside the no-op job rate)",
    )


def _notes(cases: list[FanOut], simple: float, answered: int) -> list[str]:
    delivered = sum(case.deliveries for case in cases) + 2 * WARM_UP_EVENTS
    details = "; ".join(
        f"{case.webhooks}: {case.stalled or _timing(case)}, CPU {case.cpu.describe()}"
        for case in cases
    )
    return [
        f"B9: per case, W new webhooks of the biggest organization subscribed to {EVENT}, "
        f"then {EVENTS:,} entries by COPY with their change rows and a ring of the doorbell; "
        f"the projection worker (`python -m worker.main --role projections`) makes W × "
        f"{EVENTS:,} deliveries, {WEBHOOK_WORKERS} webhook workers (`--role webhooks`) send "
        "them to one receiver (uvicorn, one process, 204 once it has read the body). Rate: "
        "deliveries ÷ (last `delivered_at` − first `created_at`); made → delivered per "
        "delivery from the same columns. A warm-up (2 webhooks, "
        f"{WARM_UP_EVENTS} events) first; each case's webhooks are disabled after it, and "
        "deleted with the entries at the end. All W × E deliveries are made at once: made → "
        "delivered is mostly the wait in line. No-op jobs: B7's SimpleWorker burst "
        f"({JOBS[SimpleWorker]} jobs, median of the profile's runs; without RQ's pubsub "
        "channel, whose teardown can wait 60 s) before the processes start.",
        f"B9 per case (CPU in cores busy, ≈): {details}. The receiver answered {answered:,} "
        f"POSTs for {delivered:,} deliveries delivered (warm-up included).",
    ]


def _timing(case: FanOut) -> str:
    return (
        f"{case.deliveries:,} in {case.seconds:.1f} s "
        f"({case.deliveries / case.sending_seconds:,.0f}/s from the first delivered), "
        f"{case.retries} retries"
    )
