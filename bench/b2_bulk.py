"""B2: `POST /organizations/{org}/time-entries/bulk` with 1000 entries a request, entries/s,
against COPY of the same rows and their change rows (one transaction per 1000 entries).

One client: the owner of the biggest organization imports entries for its members
(`user_id` in each item), as a migration from another tracker would.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg

from bench.cleanup import empty_wakeup_queue, forget_entries, last_change_id
from bench.context import Context
from bench.generate import plain_url
from bench.load import data_of, expect
from bench.report import Outcome, Row, median, times
from bench.servers import COMMAND_APP, api_server
from bench.world import (
    CHANGE_COLUMNS,
    ENTRY_COLUMNS,
    Entries,
    Organization,
    biggest_organization,
    change_row,
    entry_row,
)

BATCH = 1000
BATCHES_PER_RUN = 4
SHARE_TARGET = 0.5  # at least half of COPY's rate

Body = dict[str, Any]


def bodies(org: Organization, seed: int) -> list[list[Body]]:
    """BATCHES_PER_RUN bulk bodies' items, for members in turn."""
    entries = Entries(org, seed)
    writers = org.writers
    return [
        [entries.body(writers[(b * BATCH + i) % len(writers)], for_user=True) for i in range(BATCH)]
        for b in range(BATCHES_PER_RUN)
    ]


def bulk_run(
    client: httpx.Client, org: Organization, batches: list[list[Body]]
) -> tuple[float, list[object]]:
    """Seconds for every batch through the bulk endpoint, and the ids written."""
    path = org.path("/time-entries/bulk")
    ids: list[object] = []
    started = time.perf_counter()
    for items in batches:
        response = client.post(path, json={"entries": items}, headers=org.owner.headers)
        ids += data_of(expect(response, 201))["ids"]
    return time.perf_counter() - started, ids


def copy_run(
    database_url: str, org: Organization, batches: list[list[Body]]
) -> tuple[float, list[object]]:
    """Seconds for the same rows by COPY (entries, then change rows; a commit per batch)."""
    rows = [[entry_row(org.id, item["user_id"], item) for item in items] for items in batches]
    ids: list[object] = [row[0] for batch in rows for row in batch]
    with psycopg.connect(plain_url(database_url)) as conn:
        started = time.perf_counter()
        for batch in rows:
            with conn.cursor() as cur:
                with cur.copy(f"COPY time_entries ({ENTRY_COLUMNS}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
                with cur.copy(f"COPY changes ({CHANGE_COLUMNS}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(change_row(row))
            conn.commit()
        seconds = time.perf_counter() - started
    return seconds, ids


def run(ctx: Context) -> Outcome:
    org = biggest_organization(ctx.database_url)
    since = last_change_id(ctx.database_url)
    written: list[object] = []
    entries = BATCH * BATCHES_PER_RUN
    bulk: list[float] = []
    copied: list[float] = []
    try:
        with (
            api_server(ctx, COMMAND_APP, "command-api") as api,
            httpx.Client(base_url=api.root, timeout=120.0) as client,
        ):
            # Warm-up: one small request through the same path.
            warm = bodies(org, 0)[0][:10]
            response = client.post(
                org.path("/time-entries/bulk"), json={"entries": warm}, headers=org.owner.headers
            )
            written += data_of(expect(response, 201))["ids"]
            for i in range(ctx.runs):
                seconds, ids = copy_run(ctx.database_url, org, bodies(org, 2 * i + 1))
                copied.append(seconds)
                written += ids
                seconds, ids = bulk_run(client, org, bodies(org, 2 * i + 2))
                bulk.append(seconds)
                written += ids
    finally:
        forget_entries(ctx, written, since)
        empty_wakeup_queue(ctx)
    bulk_rate = entries / median(bulk)
    copy_rate = entries / median(copied)
    share = bulk_rate / copy_rate
    row = Row(
        f"B2 bulk create, {BATCH} entries a request",
        f"{bulk_rate:,.0f} entries/s ({median(bulk) / BATCHES_PER_RUN * 1000:,.0f} ms a request)",
        f"COPY + change rows: {copy_rate:,.0f} entries/s",
        times(share),
        f"≥ {SHARE_TARGET:g}× COPY's rate",
        share >= SHARE_TARGET,
    )
    return Outcome([row], _notes(ctx, bulk, copied))


def _notes(ctx: Context, bulk: list[float], copied: list[float]) -> list[str]:
    return [
        f"B2: {ctx.runs} runs of {BATCHES_PER_RUN} sequential requests of {BATCH} entries "
        "(one client, the owner of the biggest organization writing for its members with "
        "`user_id`, entries as in B1), each run after a COPY run of other entries of the "
        "same shape; median run. Bulk runs "
        f"{', '.join(f'{s:.2f}' for s in bulk)} s, COPY runs "
        f"{', '.join(f'{s:.2f}' for s in copied)} s. The floor COPYs the entry rows and the "
        "change rows (payload as the command writes it) through one connection, one "
        "transaction per 1000 entries. The bulk request includes validating each item, "
        "the organization's policy, locking the users, reference and overlap checks and "
        "the JSON both ways. Written entries are deleted afterwards.",
    ]
