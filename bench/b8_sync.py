"""B8: delta sync catch-up. A client of the biggest organization's owner starts without a
cursor and pulls `GET …/sync` pages of 1000 until it holds everything (or for at most
MAX_PAGES pages): changes per second, and the cost of the last pages against the first
(a page is an index range, so it should not grow with the depth). Beside it in the same
table: B7's no-op RQ job rate, what a delivery job costs at the least."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.context import Context
from bench.load import expect
from bench.report import Outcome, Row, ms, percentile
from bench.servers import API_WORKERS, QUERY_APP, api_server
from bench.world import Organization, biggest_organization

LIMIT = 1000
MAX_PAGES = 400
EDGE = 20  # the first and the last pages compared
STEADY_TARGET = 1.5  # the last pages within 1.5× of the first


def pull(client: httpx.Client, org: Organization) -> tuple[int, list[float], float]:
    """Pages until caught up or MAX_PAGES: (changes, seconds per page, seconds in all)."""
    cursor: str | None = None
    changes, timings = 0, []
    started = time.perf_counter()
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"limit": LIMIT}
        if cursor:
            params["cursor"] = cursor
        begun = time.perf_counter()
        response = expect(
            client.get(org.path("/sync"), params=params, headers=org.owner.headers), 200
        )
        timings.append(time.perf_counter() - begun)
        body = response.json()["data"]
        changes += len(body["changes"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    return changes, timings, time.perf_counter() - started


def run(ctx: Context) -> Outcome:
    org = biggest_organization(ctx.database_url)
    with (
        api_server(ctx, QUERY_APP, "query-api") as api,
        httpx.Client(base_url=api.root, timeout=120.0) as client,
    ):
        changes, timings, seconds = pull(client, org)
    first, last = timings[:EDGE], timings[-EDGE:]
    ratio = percentile(last, 0.5) / percentile(first, 0.5)
    rows = [
        Row(
            f"B8 sync catch-up, pages of {LIMIT}",
            f"{changes / seconds:,.0f} changes/s ({changes:,} in {len(timings)} pages)",
            target="information (beside B7's no-op jobs/s)",
        ),
        Row(
            f"B8 sync, last {EDGE} pages against the first {EDGE}",
            f"p50 {ms(percentile(last, 0.5))}",
            f"first: p50 {ms(percentile(first, 0.5))}",
            f"{ratio:.2f}×",
            f"≤ {STEADY_TARGET:g}× (a steady cost)",
            ratio <= STEADY_TARGET,
        ),
    ]
    notes = [
        f"B8: the query API ({API_WORKERS} uvicorn worker processes) as the owner of the "
        f"biggest organization ({org.members} members; an admin sees every entry), one client "
        f"pulling {LIMIT} changes a page without a cursor, one request after another on one "
        f"keep-alive connection, at most {MAX_PAGES} pages. The feed of generated data holds "
        "every entity at the position of the rebuild that loaded it: the pages walk that "
        "snapshot, entries, projects and members in the feed's order.",
    ]
    return Outcome(rows, notes)
