"""A rebuild's swap never makes a read fail (issue 12, point 6).

The swap renames and drops live tables, which takes ACCESS EXCLUSIVE locks; a reader holds
ACCESS SHARE locks on the tables it has read until its transaction ends. When the swap holds
one table while waiting for another that a reader holds, and that reader then needs the
first, PostgreSQL breaks the deadlock by aborting one of them: it must always be the swap
(which tries again), never the reader.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from tests.factories import OrgHandle, make_org
from tests.projections.test_rebuild import bulk_entries

ENTRIES = 12
DAY = "2026-04-06"  # bulk_entries' first day, in the organization's zone (UTC)
REBUILDS = 4
HTTP_READERS = 4
SQL_READERS = 2


class Readers:
    """Threads reading in a loop until stopped, each recording what went wrong."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.reads = 0
        self.threads: list[threading.Thread] = []

    def start(self, read: Callable[[], str | None], count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._loop, args=(read,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _loop(self, read: Callable[[], str | None]) -> None:
        while not self.stop.is_set():
            try:
                failure = read()
            except Exception as exc:  # a read that fails is what this test looks for
                failure = f"{type(exc).__name__}: {exc}"
            if failure is not None:
                self.failures.append(failure)
            self.reads += 1

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


@pytest.fixture
def readers() -> Iterator[Readers]:
    running = Readers()
    yield running
    running.join()


def detailed_report_reader(qapi: httpx.Client, org: OrgHandle) -> Callable[[], str | None]:
    """The detailed report over HTTP: totals from the daily roll-ups, then a page of entries,
    in one read-only transaction. The whole answer, from the old tables or the new ones."""

    def read() -> str | None:
        response = qapi.get(
            org.path("/reports/detailed"),
            params={"from": DAY, "to": DAY, "page_size": 100},
            headers=org.owner.headers,
        )
        if response.status_code != 200:
            return f"{response.status_code} {response.text}"
        data: dict[str, Any] = response.json()["data"]
        if data["totals"]["entries"] != ENTRIES or len(data["entries"]) != ENTRIES:
            return f"incomplete: {data['totals']} and {len(data['entries'])} entries"
        return None

    return read


def entries_then_totals_reader(db: Engine, org: OrgHandle) -> Callable[[], str | None]:
    """A read-only transaction reading the entries before their daily totals: the opposite
    order of the detailed report, so that whichever order the swap locks in, some reader
    holds a table the swap still needs."""

    def read() -> str | None:
        with db.connect() as conn, conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            entries = conn.execute(
                text("SELECT count(*) FROM proj_entries WHERE org_id = :o"), {"o": org.id}
            ).scalar_one()
            totals = conn.execute(
                text("SELECT sum(entries) FROM proj_daily_totals WHERE org_id = :o"),
                {"o": org.id},
            ).scalar_one()
        if (entries, totals) != (ENTRIES, ENTRIES):
            return f"incomplete: {entries} entries, {totals} in the totals"
        return None

    return read


def test_reads_during_rebuilds_all_succeed_with_complete_answers(
    api: httpx.Client,
    qapi: httpx.Client,
    db: Engine,
    sessions: sessionmaker[Session],
    project_all: Callable[[], None],
    assert_verified: Callable[..., None],
    readers: Readers,
) -> None:
    org = make_org(db)
    bulk_entries(api, org, ENTRIES)
    project_all()
    readers.start(detailed_report_reader(qapi, org), HTTP_READERS)
    readers.start(entries_then_totals_reader(db, org), SQL_READERS)

    for _ in range(REBUILDS):
        try:
            rebuild(sessions, "entries")
        except DBAPIError as exc:  # the swap gives way and tries again: it never fails
            readers.failures.append(f"the rebuild failed: {exc}")
        if readers.failures:
            break  # shown at once, not after every rebuild
    readers.join()

    assert readers.reads > 0
    assert readers.failures == [], readers.failures[:5]
    assert_verified(org.id)


def test_the_swap_locks_every_table_of_each_projection_once() -> None:
    for projection in PROJECTIONS:
        assert sorted(t.name for t in projection.lock_order) == sorted(
            t.name for t in projection.tables
        )
