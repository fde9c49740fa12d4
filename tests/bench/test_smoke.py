"""The benchmark data generator on a small scale: the rows it loads are what the commands
would have written, and the projections rebuilt from them verify. No timing here: the
benchmarks themselves run with `make bench`."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from bench.generate import (
    Chunk,
    Counts,
    Options,
    build_world,
    generate,
    member_entries,
    set_aside_indexes,
)
from projections.rebuild import verify
from projections.registry import PROJECTIONS

OPTIONS = Options(entries=2000, orgs=4, seed=20261128, until=date(2026, 6, 1))


@pytest.fixture(scope="module")
def generated(db: Engine, database_url: str) -> tuple[Counts, list[str]]:
    return generate(database_url, OPTIONS)


def scalar(db: Engine, sql: str, orgs: list[str]) -> Any:
    with db.connect() as conn:
        return conn.execute(text(sql), {"orgs": orgs}).scalar_one()


def test_counts(db: Engine, generated: tuple[Counts, list[str]]) -> None:
    counts, orgs = generated
    assert counts.entries == OPTIONS.entries
    assert counts.organizations == len(orgs) == OPTIONS.orgs
    assert scalar(db, "SELECT count(*) FROM time_entries WHERE org_id = ANY(:orgs)", orgs) == (
        OPTIONS.entries
    )
    assert scalar(db, "SELECT count(*) FROM memberships WHERE org_id = ANY(:orgs)", orgs) == (
        counts.users
    )
    assert scalar(db, "SELECT count(*) FROM projects WHERE org_id = ANY(:orgs)", orgs) == (
        counts.projects
    )
    assert scalar(db, "SELECT count(*) FROM tasks WHERE org_id = ANY(:orgs)", orgs) == counts.tasks
    assert scalar(db, "SELECT count(*) FROM tags WHERE org_id = ANY(:orgs)", orgs) == counts.tags
    tag_links = "SELECT count(*) FROM time_entry_tags WHERE org_id = ANY(:orgs)"
    assert scalar(db, tag_links, orgs) == counts.entry_tags
    zones = "SELECT array_agg(DISTINCT timezone) FROM organizations WHERE id = ANY(:orgs)"
    assert set(scalar(db, zones, orgs)) == {
        "Europe/Berlin",
        "America/New_York",
        "UTC",
        "Asia/Kolkata",
    }
    # One change row per organization.
    changes = "SELECT count(*) FROM changes WHERE entity = 'organization' AND org_id = ANY(:orgs)"
    assert scalar(db, changes, orgs) == OPTIONS.orgs


def test_running_timers_at_most_one_per_user(
    db: Engine, generated: tuple[Counts, list[str]]
) -> None:
    counts, orgs = generated
    running = "SELECT count(*) FROM time_entries WHERE end_at IS NULL AND org_id = ANY(:orgs)"
    assert scalar(db, running, orgs) == counts.running_timers >= 1
    twice = (
        "SELECT count(*) FROM (SELECT user_id FROM time_entries WHERE end_at IS NULL"
        " AND org_id = ANY(:orgs) GROUP BY user_id HAVING count(*) > 1) t"
    )
    assert scalar(db, twice, orgs) == 0


def test_entries_look_like_work(db: Engine, generated: tuple[Counts, list[str]]) -> None:
    _, orgs = generated
    finished = "FROM time_entries e JOIN organizations o ON o.id = e.org_id"
    finished += " WHERE e.end_at IS NOT NULL AND e.org_id = ANY(:orgs)"
    shortest, longest = "min(e.end_at - e.start_at)", "max(e.end_at - e.start_at)"
    assert scalar(db, f"SELECT extract(epoch FROM {shortest}) {finished}", orgs) >= 15 * 60
    assert scalar(db, f"SELECT extract(epoch FROM {longest}) {finished}", orgs) <= 3 * 3600
    local = "(e.start_at AT TIME ZONE o.timezone)"
    weekend = f"SELECT count(*) {finished} AND extract(isodow FROM {local}) > 5"
    assert scalar(db, weekend, orgs) == 0
    night = f"SELECT count(*) {finished} AND ({local}::time < '07:00' OR {local}::time > '22:00')"
    assert scalar(db, night, orgs) == 0
    year = f"SELECT max(e.start_at) - min(e.start_at) > interval '300 days' {finished}"
    assert scalar(db, year, orgs)
    tagged = (
        "SELECT count(DISTINCT entry_id)::float / (SELECT count(*) FROM time_entries"
        " WHERE org_id = ANY(:orgs)) FROM time_entry_tags WHERE org_id = ANY(:orgs)"
    )
    assert 0.2 < scalar(db, tagged, orgs) < 0.4
    overlapping = (
        "SELECT count(*) FROM time_entries a JOIN time_entries b ON a.user_id = b.user_id"
        " AND a.id < b.id AND tstzrange(a.start_at, a.end_at) && tstzrange(b.start_at, b.end_at)"
        " WHERE a.org_id = ANY(:orgs)"
    )
    assert scalar(db, overlapping, orgs) == 0


def test_references_hold(db: Engine, generated: tuple[Counts, list[str]]) -> None:
    """The load skips the foreign-key triggers: every reference must hold by construction,
    inside the entry's own organization."""
    _, orgs = generated
    broken = """
        SELECT count(*) FROM time_entries e
        LEFT JOIN memberships m ON m.org_id = e.org_id AND m.user_id = e.user_id
        LEFT JOIN projects p ON p.id = e.project_id AND p.org_id = e.org_id
        LEFT JOIN tasks t ON t.id = e.task_id AND t.project_id = e.project_id
        WHERE e.org_id = ANY(:orgs) AND (m.id IS NULL
            OR (e.project_id IS NOT NULL AND p.id IS NULL)
            OR (e.task_id IS NOT NULL AND t.id IS NULL))
    """
    assert scalar(db, broken, orgs) == 0
    broken_tags = """
        SELECT count(*) FROM time_entry_tags et
        LEFT JOIN time_entries e ON e.id = et.entry_id AND e.org_id = et.org_id
        LEFT JOIN tags g ON g.id = et.tag_id AND g.org_id = et.org_id
        WHERE et.org_id = ANY(:orgs) AND (e.id IS NULL OR g.id IS NULL)
    """
    assert scalar(db, broken_tags, orgs) == 0


def test_rates_and_billable_resolved_like_the_command_api(
    db: Engine, generated: tuple[Counts, list[str]]
) -> None:
    _, orgs = generated
    wrong = """
        SELECT count(*) FROM time_entries e
        JOIN organizations o ON o.id = e.org_id
        JOIN memberships m ON m.org_id = e.org_id AND m.user_id = e.user_id
        LEFT JOIN projects p ON p.id = e.project_id
        LEFT JOIN project_members pm ON pm.project_id = e.project_id AND pm.user_id = e.user_id
        WHERE e.org_id = ANY(:orgs) AND (
            e.hourly_rate_amount <> COALESCE(pm.hourly_rate_amount, p.hourly_rate_amount,
                                             m.hourly_rate_amount, o.hourly_rate_amount, 0)
            OR e.billable <> COALESCE(p.billable, false))
    """
    assert scalar(db, wrong, orgs) == 0
    distinct_rates = "SELECT count(DISTINCT hourly_rate_amount) FROM time_entries"
    assert scalar(db, distinct_rates + " WHERE org_id = ANY(:orgs)", orgs) > 3


def test_projections_verify(db: Engine, generated: tuple[Counts, list[str]]) -> None:
    _, orgs = generated
    sessions = sessionmaker(bind=db)
    for projector in PROJECTIONS:
        result = verify(sessions, projector.name, org_ids=list(orgs))
        assert result.ok, [(d.table, d.missing, d.unexpected, d.samples) for d in result.diffs]
    live = "SELECT count(*) FROM time_entries WHERE deleted_at IS NULL AND org_id = ANY(:orgs)"
    projected = "SELECT count(*) FROM proj_entries WHERE org_id = ANY(:orgs)"
    assert scalar(db, projected, orgs) == scalar(db, live, orgs) > 0


def test_indexes_set_aside_are_back(
    db: Engine, database_url: str, generated: tuple[Counts, list[str]]
) -> None:
    """An empty database loads without its plain indexes; they are all built again, and
    tables that hold data keep theirs."""
    query = (
        "SELECT array_agg(indexname::text) FROM pg_indexes"
        " WHERE tablename IN ('time_entries', 'time_entry_tags')"
    )
    with db.connect() as conn:
        names = set(conn.execute(text(query)).scalar_one())
    assert {
        "ix_time_entries_org_id_project_id",
        "ix_time_entries_org_id_task_id",
        "ix_time_entries_org_id_user_id_start_at",
        "ix_time_entry_tags_org_id_tag_id",
        "pk_time_entries",
        "ex_time_entries_no_overlap",
        "uq_time_entries_one_running_timer",
    } <= names
    assert set_aside_indexes(database_url) == []


def test_same_seed_same_data() -> None:
    def first_lines(seed: int) -> list[bytes]:
        options = Options(entries=5000, seed=seed, until=date(2026, 6, 1))
        orgs = build_world(options)
        chunk = Chunk(id_prefix=bytes(6))
        member_entries(random.Random(7), orgs[0], orgs[0].members[0], chunk)
        return chunk.entries + chunk.tags

    assert first_lines(3) == first_lines(3)
    assert first_lines(3) != first_lines(4)
