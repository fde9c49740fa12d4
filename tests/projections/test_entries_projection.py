"""The entries projection fed by real commands: local days across DST, totals, renames."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql

from projections import entries
from projections.models import proj_entries
from tests.factories import make_org

DST_DAYS = {
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
}


def local(zone: str, day: date, at: time) -> str:
    return datetime.combine(day, at, ZoneInfo(zone)).isoformat()


def create_entry(
    api: httpx.Client, org_path: str, headers: dict[str, str], **body: object
) -> dict[str, object]:
    response = api.post(f"{org_path}/time-entries", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


@pytest.mark.parametrize("zone", sorted(DST_DAYS))
def test_entries_land_on_their_local_day_across_dst(
    zone: str,
    api: httpx.Client,
    db: Engine,
    project_all: Callable[[], None],
    assert_verified: Callable[..., None],
) -> None:
    org = make_org(db, timezone=zone)
    expected: dict[str, date] = {}
    for day in DST_DAYS[zone]:
        for at in (time(0, 30), time(23, 30)):
            start = local(zone, day, at)
            end = (datetime.fromisoformat(start) + timedelta(minutes=20)).isoformat()
            entry = create_entry(api, org.path(), org.owner.headers, start_at=start, end_at=end)
            expected[str(entry["id"])] = day
    project_all()
    with db.connect() as conn:
        rows: dict[str, date] = dict(
            conn.execute(
                text("SELECT entry_id::text, local_date FROM proj_entries WHERE org_id = :o"),
                {"o": org.id},
            ).all()
        )
        days: dict[date, int] = dict(
            conn.execute(
                text(
                    "SELECT day, sum(entries) FROM proj_daily_totals WHERE org_id = :o GROUP BY day"
                ),
                {"o": org.id},
            ).all()
        )
    assert rows == expected
    assert days == {day: 2 for day in DST_DAYS[zone]}
    assert_verified(org.id)


def test_a_time_zone_change_moves_entries_to_their_new_local_day(
    api: httpx.Client,
    db: Engine,
    project_all: Callable[[], None],
    assert_verified: Callable[..., None],
) -> None:
    org = make_org(db, timezone="UTC")
    entry = create_entry(
        api,
        org.path(),
        org.owner.headers,
        start_at="2026-06-10T02:00:00Z",
        end_at="2026-06-10T03:00:00Z",
    )
    project_all()
    response = api.patch(
        org.path(), json={"timezone": "America/Los_Angeles"}, headers=org.owner.headers
    )
    assert response.status_code == 200, response.text
    project_all()
    with db.connect() as conn:
        local_date = conn.execute(
            text("SELECT local_date FROM proj_entries WHERE entry_id = :e"), {"e": entry["id"]}
        ).scalar_one()
        days = conn.execute(
            text("SELECT day, seconds FROM proj_daily_totals WHERE org_id = :o"), {"o": org.id}
        ).all()
    assert local_date == date(2026, 6, 9)
    assert days == [(date(2026, 6, 9), 3600)]
    assert_verified(org.id)


def test_totals_follow_edits_deletes_renames_and_timers(
    api: httpx.Client,
    db: Engine,
    project_all: Callable[[], None],
    assert_verified: Callable[..., None],
) -> None:
    org = make_org(db, timezone="Europe/Berlin", hourly_rate_amount=6000)
    headers = org.owner.headers
    project = api.post(
        org.path("/projects"), json={"name": f"P {uuid.uuid4().hex[:6]}"}, headers=headers
    ).json()["data"]
    tag = api.post(org.path("/tags"), json={"name": "deep work"}, headers=headers).json()["data"]
    first = create_entry(
        api,
        org.path(),
        headers,
        start_at="2026-05-04T08:00:00Z",
        end_at="2026-05-04T09:30:00Z",
        project_id=project["id"],
        billable=True,
        tag_ids=[tag["id"]],
    )
    second = create_entry(
        api,
        org.path(),
        headers,
        start_at="2026-05-05T08:00:00Z",
        end_at="2026-05-05T08:45:00Z",
        project_id=project["id"],
    )
    project_all()
    assert (
        api.patch(
            org.path(f"/time-entries/{second['id']}"),
            json={"end_at": "2026-05-05T09:00:00Z"},
            headers=headers,
        ).status_code
        == 200
    )
    assert api.delete(org.path(f"/time-entries/{first['id']}"), headers=headers).status_code == 204
    assert (
        api.patch(
            org.path(f"/projects/{project['id']}"), json={"name": "Renamed"}, headers=headers
        ).status_code
        == 200
    )
    assert (
        api.patch(
            org.path(f"/tags/{tag['id']}"), json={"name": "shallow"}, headers=headers
        ).status_code
        == 200
    )
    started = api.post(
        org.path("/timer/start"), json={"project_id": project["id"]}, headers=headers
    )
    assert started.status_code == 201, started.text
    project_all()
    with db.connect() as conn:
        names = (
            conn.execute(
                text("SELECT DISTINCT project_name FROM proj_entries WHERE org_id = :o"),
                {"o": org.id},
            )
            .scalars()
            .all()
        )
        stats = conn.execute(
            text("SELECT seconds, entries FROM proj_project_stats WHERE project_id = :p"),
            {"p": project["id"]},
        ).one()
        running = (
            conn.execute(
                text("SELECT entry_id::text FROM proj_running_timers WHERE org_id = :o"),
                {"o": org.id},
            )
            .scalars()
            .all()
        )
        tagged = conn.execute(
            text("SELECT tag_id, seconds, entries FROM proj_daily_tag_totals WHERE org_id = :o"),
            {"o": org.id},
        ).all()
    assert names == ["Renamed"]
    assert tuple(stats) == (3600, 1)  # the deleted entry and the running timer do not count
    assert running == [started.json()["data"]["id"]]
    assert [tuple(row) for row in tagged] == [(None, 3600, 1)]  # the untagged entry only
    assert_verified(org.id)


def test_a_deleted_organization_leaves_every_entries_table(
    api: httpx.Client,
    db: Engine,
    project_all: Callable[[], None],
    assert_verified: Callable[..., None],
) -> None:
    """While another organization lives (the old statement found an organization gone only
    when no live organization was left anywhere)."""
    org, other = make_org(db), make_org(db)
    for each in (org, other):
        create_entry(
            api,
            each.path(),
            each.owner.headers,
            start_at="2026-05-04T09:00:00Z",
            end_at="2026-05-04T10:00:00Z",
        )
        create_entry(api, each.path(), each.owner.headers, start_at="2026-05-05T09:00:00Z")
    project_all()

    response = api.delete(org.path(), headers=org.owner.headers)
    assert response.status_code == 204, response.text
    project_all()

    tables = ("proj_entries", "proj_daily_totals", "proj_monthly_totals", "proj_running_timers")
    with db.connect() as conn:
        left = {
            table: conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE org_id = :o"), {"o": org.id}
            ).scalar_one()
            for table in tables
        }
        kept = conn.execute(
            text("SELECT count(*) FROM proj_entries WHERE org_id = :o"), {"o": other.id}
        ).scalar_one()
    assert left == dict.fromkeys(tables, 0)
    assert kept == 2
    assert_verified(org.id, other.id)


def test_a_column_of_proj_entries_is_one_labelled_column_of_its_source() -> None:
    """What makes adding a column three edits (model, source select, migration): a source
    that misses a column of the table is refused at import, and the in-place upsert sets
    every column but the key, read from the table."""
    rows = entries.entries_source()
    short = rows.with_only_columns(*list(rows.selected_columns)[:-1])
    with pytest.raises(RuntimeError, match="not proj_entries' columns"):
        entries._every_column(short)
    assert entries._every_column(rows) is rows

    sql = str(entries._UPSERT_ENTRIES.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    updated = sql.split("DO UPDATE SET", 1)[1]
    for column in proj_entries.c:
        assert (f" {column.name} = excluded.{column.name}" in updated) is not column.primary_key
