"""Blue/green rebuilds: readers never see an empty or half-built table, writes keep
flowing, and the result equals a recomputation. And pruning the change log."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from projections.models import ENTRIES_FILLFACTOR
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS
from projections.runner import prune_change_log
from tests.factories import OrgHandle, make_org


def bulk_entries(api: httpx.Client, org: OrgHandle, count: int, day: int = 0) -> None:
    start = datetime(2026, 4, 6, 7, tzinfo=UTC) + timedelta(days=day)
    entries = [
        {
            "start_at": (start + timedelta(minutes=20 * i)).isoformat(),
            "end_at": (start + timedelta(minutes=20 * i + 15)).isoformat(),
        }
        for i in range(count)
    ]
    response = api.post(
        org.path("/time-entries/bulk"), json={"entries": entries}, headers=org.owner.headers
    )
    assert response.status_code == 201, response.text


def count_entries(db: Engine, org: OrgHandle) -> int:
    with db.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM proj_entries WHERE org_id = :o"), {"o": org.id}
            ).scalar_one()
        )


def test_readers_see_the_old_table_until_the_swap_and_writes_keep_flowing(
    api: httpx.Client,
    db: Engine,
    sessions: sessionmaker[Session],
    project_all: Callable[[], None],
    assert_verified: Callable[..., None],
) -> None:
    org = make_org(db)
    bulk_entries(api, org, 60)
    project_all()
    assert count_entries(db, org) == 60

    seen: list[int] = []
    done = threading.Event()

    def read_while_rebuilding() -> None:
        while not done.is_set():
            seen.append(count_entries(db, org))

    reader = threading.Thread(target=read_while_rebuilding)
    reader.start()
    steps: list[str] = []
    try:
        writer = threading.Thread(target=bulk_entries, args=(api, org, 30, 1))
        writer.start()
        for projector in PROJECTIONS:
            rebuild(sessions, projector.name, lambda step, *_: steps.append(step))
        writer.join()
    finally:
        done.set()
        reader.join()
    project_all()

    assert seen
    assert min(seen) >= 60  # never empty, never half-built
    assert count_entries(db, org) == 90  # the write made during the rebuild is there
    assert "swap" in steps
    assert any(step.startswith("load ") for step in steps)
    assert_verified(org.id)


def test_pruning_keeps_what_a_projection_still_needs(
    api: httpx.Client, db: Engine, sessions: sessionmaker[Session], project_all: Callable[[], None]
) -> None:
    org = make_org(db)
    bulk_entries(api, org, 5)
    project_all()
    names = [p.name for p in PROJECTIONS]
    with db.begin() as conn:
        kept_id = conn.execute(
            text(
                "INSERT INTO changes (org_id, entity, entity_id, op, payload)"
                " VALUES (:o, 'nothing', :e, 'created', '{}') RETURNING id"
            ),
            {"o": org.id, "e": uuid.uuid4()},
        ).scalar_one()
    with sessions() as session, session.begin():
        assert prune_change_log(session, names, retention_days=30) == 0  # all too young
    with sessions() as session, session.begin():
        pruned = prune_change_log(session, names, retention_days=0, batch_size=100_000)
    assert pruned > 0
    with db.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM changes WHERE org_id = :o"), {"o": org.id}
        ).scalar_one()
        still_there = conn.execute(
            text("SELECT count(*) FROM changes WHERE id = :id"), {"id": kept_id}
        ).scalar_one()
    assert left == 1  # only the change no projection has passed yet
    assert still_there == 1


def table_exists(db: Engine, name: str) -> bool:
    with db.connect() as conn:
        return bool(
            conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one()
        )


def checkpoint_of(db: Engine, name: str) -> tuple[str, int]:
    with db.connect() as conn:
        tx, change_id = conn.execute(
            text("SELECT tx::text, change_id FROM projection_checkpoints WHERE name = :n"),
            {"n": name},
        ).one()
    return tx, change_id


def test_a_rebuild_failing_in_a_parallel_lane_swaps_nothing_and_leaves_no_new_tables(
    api: httpx.Client,
    db: Engine,
    sessions: sessionmaker[Session],
    project_all: Callable[[], None],
    assert_verified: Callable[..., None],
) -> None:
    """The entries are loaded and committed by a session of their own before the lanes
    start; a lane that fails must not leave them, or anything else, behind."""
    org = make_org(db)
    bulk_entries(api, org, 20)
    project_all()
    before = checkpoint_of(db, "entries")
    # A view where a lane will create its table: that lane's DROP TABLE fails.
    with db.begin() as conn:
        conn.execute(text("CREATE VIEW proj_daily_tag_totals__new AS SELECT 1 AS one"))
    try:
        with pytest.raises(DBAPIError, match="is not a table"):
            rebuild(sessions, "entries")
        assert not table_exists(db, "proj_entries__new")  # committed, then dropped
        assert not table_exists(db, "proj_daily_totals__new")  # the other lane's
        assert count_entries(db, org) == 20  # the live tables are the old ones
        assert checkpoint_of(db, "entries") == before
    finally:
        with db.begin() as conn:
            conn.execute(text("DROP VIEW IF EXISTS proj_daily_tag_totals__new"))

    bulk_entries(api, org, 5, 1)
    rebuild(sessions, "entries")
    project_all()
    assert count_entries(db, org) == 25
    assert not table_exists(db, "proj_entries__new")
    assert_verified(org.id)


def test_a_rebuild_keeps_the_storage_parameters_of_the_live_tables(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    """The entries table keeps room in its pages for in-place updates (migration 0012);
    the rebuilt table must keep it too (CREATE TABLE … LIKE does not copy it)."""

    def options() -> list[str]:
        with db.connect() as conn:
            found = conn.execute(
                text("SELECT reloptions FROM pg_class WHERE oid = 'proj_entries'::regclass")
            ).scalar_one()
        return list(found or [])

    assert options() == [f"fillfactor={ENTRIES_FILLFACTOR}"]
    rebuild(sessions, "entries")
    assert options() == [f"fillfactor={ENTRIES_FILLFACTOR}"]
