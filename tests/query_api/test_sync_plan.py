"""A page of delta sync costs the same however much history lies behind its cursor: each of
its ranges is an index scan that stops after a page's rows, never a scan of the feed. Read
off PostgreSQL's own plan (rows actually read), so it holds on any machine, however busy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from projections.models import SYNC_KINDS, SYNC_TAG, SYNC_TIME_ENTRY
from query_api.modules.sync.dependencies import START, Position
from query_api.modules.sync.queries import feed_statement

ROWS_PER_OWNER = 20_000
LIMIT = 50


@pytest.fixture
def feed(db: Engine) -> Iterator[tuple[uuid.UUID, list[uuid.UUID]]]:
    """An organization whose feed holds 60,000 entries of three users and 2,000 tags, one
    change each, in increasing positions."""
    org_id, owners = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    with db.begin() as conn:
        for n, owner in enumerate(owners):
            conn.execute(
                text(
                    "INSERT INTO proj_sync_feed"
                    " (org_id, kind, owner_id, entity_id, tx, change_id, gone, changed_at)"
                    " SELECT :org, :kind, :owner, gen_random_uuid(), (i / 10 + 1)::text::xid8,"
                    "  i * 3 + :n, false, now()"
                    " FROM generate_series(1, :rows) AS i"
                ),
                {
                    "org": org_id,
                    "kind": SYNC_TIME_ENTRY,
                    "owner": owner,
                    "n": n,
                    "rows": ROWS_PER_OWNER,
                },
            )
        conn.execute(
            text(
                "INSERT INTO proj_sync_feed"
                " (org_id, kind, owner_id, entity_id, tx, change_id, gone, changed_at)"
                " SELECT :org, :kind, '00000000-0000-0000-0000-000000000000', gen_random_uuid(),"
                "  (i * 3)::text::xid8, i * 30, false, now()"
                " FROM generate_series(1, 2000) AS i"
            ),
            {"org": org_id, "kind": SYNC_TAG},
        )
    with db.connect() as conn:
        conn.execute(text("ANALYZE proj_sync_feed"))
    yield org_id, owners
    with db.begin() as conn:
        conn.execute(text("DELETE FROM proj_sync_feed WHERE org_id = :org"), {"org": org_id})


@contextmanager
def explained(db: Engine) -> Iterator[None]:
    """Statements run as `EXPLAIN (ANALYZE, FORMAT JSON)` of themselves, their parameters
    bound as SQLAlchemy binds them."""

    def explain(*args: Any) -> tuple[str, Any]:
        statement, parameters = args[2], args[3]
        return "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters

    event.listen(db, "before_cursor_execute", explain, retval=True)
    try:
        yield
    finally:
        event.remove(db, "before_cursor_execute", explain)


def _plan(db: Engine, statement: Any) -> dict[str, Any]:
    with explained(db), db.connect() as conn:
        document = conn.execute(statement).all()[0][0]
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _feed_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in _nodes(plan) if node.get("Relation Name") == "proj_sync_feed"]


def test_a_page_reads_a_page_of_rows_wherever_its_cursor_stands(
    db: Engine, feed: tuple[uuid.UUID, list[uuid.UUID]]
) -> None:
    org_id, owners = feed
    bound = (10**9, 10**12)
    for depth in (0.0, 0.5, 0.99):
        change = int(ROWS_PER_OWNER * 3 * depth)
        after = Position(change // 30 + 1, change, SYNC_TIME_ENTRY, owners[0]) if depth else START
        for users in (None, frozenset(owners[:2])):
            statement = feed_statement(org_id, SYNC_KINDS, users, after, bound, LIMIT + 1)
            plan = _plan(db, statement)
            scans = _feed_scans(plan)
            assert scans, plan
            for scan in scans:
                assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), scan
                assert scan["Actual Rows"] * scan["Actual Loops"] <= LIMIT + 1, (depth, scan)
                assert scan.get("Rows Removed by Filter", 0) == 0, scan  # all index conditions
            assert plan["Actual Rows"] == LIMIT + 1, (depth, users)
