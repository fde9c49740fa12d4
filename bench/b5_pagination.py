"""B5: paging through `GET /organizations/{org}/time-entries` (newest first, page_size 50)
as the owner of the biggest organization: page 1, page 1000 (OFFSET 49,950), and a keyset
cursor at depth 50,000, reached once by walking the cursors and then requested again and
again. A cursor costs the same at any depth; an offset grows with it."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.context import Context
from bench.load import expect
from bench.report import Outcome, Row, ms, percentile
from bench.servers import API_WORKERS, QUERY_APP, api_server
from bench.world import Organization, biggest_organization

PAGE_SIZE = 50
DEEP_PAGE = 1000
DEPTH = 50_000
WALK_PAGE_SIZE = 200  # the walk to the deep cursor, in fewer requests
SAMPLES = 30
WARM_UP = 2
CURSOR_TARGET = 1.5  # the deep cursor within 1.5× of page 1


def walk(client: httpx.Client, org: Organization, depth: int) -> tuple[str | None, int, float]:
    """Follow next_cursor until `depth` entries are behind: (cursor, depth reached, s)."""
    cursor: str | None = None
    reached = 0
    started = time.perf_counter()
    while reached < depth:
        size = min(WALK_PAGE_SIZE, depth - reached)
        params: dict[str, Any] = {"page_size": size}
        if cursor:
            params["cursor"] = cursor
        response = expect(
            client.get(org.path("/time-entries"), params=params, headers=org.owner.headers), 200
        )
        body = response.json()
        reached += len(body["data"])
        cursor = body["pagination"]["next_cursor"]
        if not cursor:
            break
    return cursor, reached, time.perf_counter() - started


def samples(client: httpx.Client, org: Organization, params: dict[str, Any]) -> list[float]:
    def get() -> None:
        expect(client.get(org.path("/time-entries"), params=params, headers=org.owner.headers), 200)

    for _ in range(WARM_UP):
        get()
    timings = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        get()
        timings.append(time.perf_counter() - started)
    return timings


def run(ctx: Context) -> Outcome:
    org = biggest_organization(ctx.database_url)
    with (
        api_server(ctx, QUERY_APP, "query-api") as api,
        httpx.Client(base_url=api.root, timeout=120.0) as client,
    ):
        first = samples(client, org, {"page_size": PAGE_SIZE})
        deep = samples(client, org, {"page_size": PAGE_SIZE, "page": DEEP_PAGE})
        cursor, reached, walked = walk(client, org, DEPTH)
        keyset = samples(client, org, {"page_size": PAGE_SIZE, "cursor": cursor}) if cursor else []
    base = percentile(first, 0.5)
    rows = [
        Row(
            f"B5 /time-entries page 1 (page_size {PAGE_SIZE}, with the total)",
            _figure(first),
            target="information (the reference below)",
        ),
        Row(
            f"B5 page {DEEP_PAGE} (OFFSET {(DEEP_PAGE - 1) * PAGE_SIZE:,})",
            _figure(deep),
            f"page 1: p50 {ms(base)}",
            f"{percentile(deep, 0.5) / base:.2f}× page 1 (p50)",
            "information (what the cursor avoids)",
        ),
    ]
    if not keyset or reached < DEPTH:
        rows.append(
            Row(
                f"B5 cursor at depth {DEPTH:,}",
                f"not measured: the walk ended at {reached:,} entries",
                target=f"≤ {CURSOR_TARGET:g}× page 1",
            )
        )
    else:
        ratio = percentile(keyset, 0.5) / base
        rows.append(
            Row(
                f"B5 cursor at depth {reached:,}",
                _figure(keyset),
                f"page 1: p50 {ms(base)}",
                f"{ratio:.2f}× page 1 (p50)",
                f"≤ {CURSOR_TARGET:g}× page 1",
                ratio <= CURSOR_TARGET,
            )
        )
    return Outcome(rows, _notes(org, reached, walked))


def _figure(values: list[float]) -> str:
    return f"p50 {ms(percentile(values, 0.5))}, p95 {ms(percentile(values, 0.95))}"


def _notes(org: Organization, reached: int, walked: float) -> list[str]:
    return [
        f"B5: the query API ({API_WORKERS} uvicorn worker processes) as the owner of the "
        "biggest organization "
        f"({org.members} members; an admin sees every entry), no filter, newest first, "
        f"page_size {PAGE_SIZE}; {WARM_UP} warm-up then {SAMPLES} timed requests each, one "
        "after another on one keep-alive connection; ratios compare medians. Page numbers "
        "count the total (page 1 included); a cursor page does not (`total` null). The "
        f"cursor was reached once by following next_cursor {WALK_PAGE_SIZE} entries at a "
        f"time to depth {reached:,} ({walked:.1f} s), then requested {SAMPLES} times.",
    ]
