"""GET /organizations/{org_id}/time-entries: the entry shape, every filter, both orders,
running timers, visibility, and the parameters refused with a 422."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.factories import UserHandle, add_member, make_org, make_user
from tests.query_api.entries.helpers import Client, at, error_field, iso, span


def test_an_entry_has_the_shape_of_the_contract(client: Client) -> None:
    customer = client.named("/clients", "ACME")
    project = client.named(
        "/projects", "Website", client_id=str(customer), color="#112233", hourly_rate=10_000
    )
    task = client.named(f"/projects/{project}/tasks", "Design")
    tags = sorted([client.named("/tags", "urgent"), client.named("/tags", "backend")])
    entry_id = client.entry(
        at("2026-11-02", 9),
        5400,
        project_id=str(project),
        task_id=str(task),
        tag_ids=[str(t) for t in reversed(tags)],
        description="Landing page",
    )

    (entry,) = client.entries()

    names = {tags[0]: None, tags[1]: None}
    for tag in entry["tags"]:
        names[uuid.UUID(tag["id"])] = tag["name"]
    assert entry == {
        "id": str(entry_id),
        "user": {"id": str(client.org.owner.id), "full_name": client.org.owner.full_name},
        "project": {"id": str(project), "name": "Website", "color": "#112233"},
        "client": {"id": str(customer), "name": "ACME"},
        "task": {"id": str(task), "name": "Design"},
        "tags": [{"id": str(t), "name": names[t]} for t in tags],  # ordered by tag id
        "description": "Landing page",
        "start_at": "2026-11-02T09:00:00Z",
        "end_at": "2026-11-02T10:30:00Z",
        "duration_seconds": 5400,
        "billable": True,
        "amount": 15_000,  # 1.5 h at 100.00
        "version": 1,
        "updated_at": entry["updated_at"],
    }
    assert set(names.values()) == {"urgent", "backend"}
    assert entry["updated_at"].endswith("Z")


def test_an_entry_without_project_task_or_tags_has_nulls_and_an_empty_list(client: Client) -> None:
    client.entry(at("2026-11-02"), 60)
    (entry,) = client.entries()
    assert (entry["project"], entry["client"], entry["task"]) == (None, None, None)
    assert entry["tags"] == []
    assert (entry["billable"], entry["amount"], entry["description"]) == (False, 0, "")


def test_a_running_timer_has_no_end_and_a_duration_that_grows(client: Client) -> None:
    started = client.write("POST", "/timer/start", {"description": "now"})
    first = client.entries(running=True)
    time.sleep(1.2)
    second = client.entries(running=True)

    assert [e["id"] for e in first] == [started["id"]] == [e["id"] for e in second]
    assert first[0]["end_at"] is None
    assert second[0]["end_at"] is None
    assert 0 <= first[0]["duration_seconds"] < second[0]["duration_seconds"]
    assert first[0]["amount"] == 0


def test_running_filters_timers_in_or_out(client: Client) -> None:
    finished = client.entry(at("2026-11-02"), 600)
    running = uuid.UUID(client.write("POST", "/timer/start", {})["id"])
    assert client.ids(running=True) == [running]
    assert client.ids(running=False) == [finished]
    assert set(client.ids()) == {finished, running}


def test_dates_are_inclusive_local_days_of_the_organization(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    client = Client(api, qapi, make_org(db, timezone="America/New_York"))
    # 03:00Z on Nov 3 is still Nov 2 in New York; Nov 1 2026 is the day clocks fall back.
    late_on_2nd = client.entry(at("2026-11-03", 3), 600)
    on_dst_day = client.entry(at("2026-11-01", 5, 30), 600)  # 01:30 EDT, Nov 1
    on_1st_late = client.entry(at("2026-11-02", 4, 59), 60)  # 23:59 EST, Nov 1
    on_3rd = client.entry(at("2026-11-03", 5), 600)  # 00:00 EST, Nov 3
    before = client.entry(at("2026-11-01", 3, 59), 60)  # 23:59 EDT, Oct 31

    assert set(client.ids(**span("2026-11-02", "2026-11-02"))) == {late_on_2nd}
    assert set(client.ids(**span("2026-11-01", "2026-11-01"))) == {
        on_dst_day,
        on_1st_late,
    }
    assert set(client.ids(**span("2026-11-03"))) == {on_3rd}
    assert set(client.ids(to="2026-10-31")) == {before}
    assert len(client.ids(**span("2026-10-31", "2026-11-03"))) == 5


@dataclass
class Catalog:
    customer: uuid.UUID
    project: uuid.UUID
    other_project: uuid.UUID
    task: uuid.UUID
    tag: uuid.UUID
    other_tag: uuid.UUID


def _catalog(client: Client) -> Catalog:
    customer = client.named("/clients")
    project = client.named("/projects", client_id=str(customer))
    other_project = client.named("/projects", billable=False)
    return Catalog(
        customer=customer,
        project=project,
        other_project=other_project,
        task=client.named(f"/projects/{project}/tasks"),
        tag=client.named("/tags"),
        other_tag=client.named("/tags"),
    )


def test_each_filter_narrows_to_what_it_names(client: Client, db: Engine) -> None:
    c = _catalog(client)
    member = add_member(db, client.org, "member")
    team = client.named("/teams")
    client.write("PUT", f"/teams/{team}/members/{member.id}", {"is_lead": False})

    plain = client.entry(at("2026-11-02", 8), 600, description="Plain work")
    in_project = client.entry(
        at("2026-11-02", 9), 600, project_id=str(c.project), description="50% done_ok"
    )
    with_task = client.entry(
        at("2026-11-02", 10), 600, project_id=str(c.project), task_id=str(c.task)
    )
    tagged = client.entry(
        at("2026-11-02", 11), 600, tag_ids=[str(c.tag), str(c.other_tag)], description="SEARCH me"
    )
    other_tagged = client.entry(at("2026-11-02", 12), 600, tag_ids=[str(c.other_tag)])
    not_billable = client.entry(at("2026-11-02", 13), 600, project_id=str(c.other_project))
    by_member = client.entry(at("2026-11-02", 14), 600, user=member, billable=True)

    everything = {plain, in_project, with_task, tagged, other_tagged, not_billable, by_member}
    assert set(client.ids()) == everything
    assert set(client.ids(project_id=c.project)) == {in_project, with_task}
    assert set(client.ids(client_id=c.customer)) == {in_project, with_task}
    assert set(client.ids(task_id=c.task)) == {with_task}
    assert set(client.ids(tag_id=c.tag)) == {tagged}
    assert set(client.ids(tag_id=c.other_tag)) == {tagged, other_tagged}
    assert set(client.ids(billable=True)) == {in_project, with_task, by_member}
    assert set(client.ids(billable=False)) == everything - {in_project, with_task, by_member}
    assert set(client.ids(user_id=member.id)) == {by_member}
    assert set(client.ids(user_id=client.org.owner.id)) == everything - {by_member}
    assert set(client.ids(team_id=team)) == {by_member}
    # Search: a case-insensitive substring; % and _ are literal characters.
    assert set(client.ids(search="search")) == {tagged}
    assert set(client.ids(search="50%")) == {in_project}
    assert set(client.ids(search="e_o")) == {in_project}
    assert set(client.ids(search="%")) == {in_project}
    assert client.ids(search="e_w") == []
    # Filters combine.
    assert set(client.ids(project_id=c.project, billable=True, search="done")) == {in_project}
    assert client.ids(tag_id=c.tag, project_id=c.project) == []
    # An id from nowhere narrows to nothing; an unknown team is a 404.
    assert client.ids(project_id=uuid.uuid4()) == []
    assert client.get("/time-entries", team_id=uuid.uuid4()).status_code == 404


def test_both_orders_with_entry_id_breaking_ties(client: Client) -> None:
    early = client.entry(at("2026-11-02", 8), 600)
    same_start = {"start_at": iso(at("2026-11-02", 9)), "end_at": iso(at("2026-11-02", 10))}
    tied = client.bulk([same_start] * 4)
    late = client.entry(at("2026-11-02", 11), 600)

    ascending = [early, *sorted(tied, key=str), late]
    assert client.ids(sort="start_at") == ascending
    assert client.ids(sort="-start_at") == ascending[::-1]
    assert client.ids() == ascending[::-1]  # newest first by default


def test_pages_by_number_count_the_total(client: Client) -> None:
    ids = client.bulk(
        [
            {"start_at": iso(at("2026-11-02", h)), "end_at": iso(at("2026-11-02", h, 30))}
            for h in range(7)
        ]
    )
    pages = [client.get("/time-entries", page=p, page_size=3).json() for p in (1, 2, 3, 4)]

    assert [p["pagination"]["total"] for p in pages] == [7, 7, 7, 7]
    assert [p["pagination"]["total_pages"] for p in pages] == [3, 3, 3, 3]
    assert [p["pagination"]["has_next"] for p in pages] == [True, True, False, False]
    assert [p["pagination"]["has_previous"] for p in pages] == [False, True, True, True]
    assert [len(p["data"]) for p in pages] == [3, 3, 1, 0]
    assert [uuid.UUID(e["id"]) for p in pages for e in p["data"]] == ids[::-1]
    assert pages[0]["pagination"]["next_cursor"] is not None
    assert pages[2]["pagination"]["next_cursor"] is None


# --- Visibility -----------------------------------------------------------------------------


@dataclass
class Staff:
    team_a: uuid.UUID
    admin: UserHandle
    manager: UserHandle
    lead_below: UserHandle
    member: UserHandle
    deep_member: UserHandle
    loner: UserHandle
    idle_manager: UserHandle


def _staffed(client: Client, db: Engine) -> tuple[Staff, dict[uuid.UUID, uuid.UUID]]:
    """Team A (led by `manager`, with `member`) has team B below it (led by `lead_below`, a
    member, with `deep_member`); `loner` and `idle_manager` are in no team. One entry each."""
    org = client.org
    team_a = client.named("/teams", "A")
    team_b = client.named("/teams", "B", parent_id=str(team_a))
    staff = Staff(
        team_a=team_a,
        admin=add_member(db, org, "admin"),
        manager=add_member(db, org, "manager"),
        lead_below=add_member(db, org, "member"),
        member=add_member(db, org, "member"),
        deep_member=add_member(db, org, "member"),
        loner=add_member(db, org, "member"),
        idle_manager=add_member(db, org, "manager"),
    )
    for team, user, lead in (
        (team_a, staff.manager, True),
        (team_a, staff.member, False),
        (team_b, staff.lead_below, True),
        (team_b, staff.deep_member, False),
    ):
        client.write("PUT", f"/teams/{team}/members/{user.id}", {"is_lead": lead})
    users = [org.owner, *(u for u in vars(staff).values() if isinstance(u, UserHandle))]
    entries = {
        user.id: client.entry(at("2026-11-02", 8 + i), 600, user=user)
        for i, user in enumerate(users)
    }
    return staff, entries


def test_each_role_sees_exactly_its_scope(client: Client, db: Engine) -> None:
    staff, entries = _staffed(client, db)
    org = client.org

    def seen(user: UserHandle) -> set[uuid.UUID]:
        return set(client.ids(user=user))

    def of(*users: UserHandle) -> set[uuid.UUID]:
        return {entries[u.id] for u in users}

    assert seen(org.owner) == set(entries.values())
    assert seen(staff.admin) == set(entries.values())
    assert seen(staff.manager) == of(
        staff.manager, staff.member, staff.lead_below, staff.deep_member
    )
    assert seen(staff.lead_below) == of(staff.lead_below)  # a lead, but a member by role
    assert seen(staff.member) == of(staff.member)
    assert seen(staff.idle_manager) == of(staff.idle_manager)


def test_filters_never_widen_the_scope(client: Client, db: Engine) -> None:
    staff, entries = _staffed(client, db)
    # Someone outside the caller's scope is a 404, not an empty page.
    for viewer, target in (
        (staff.member, staff.manager),
        (staff.manager, staff.loner),
        (staff.manager, client.org.owner),
    ):
        response = client.get("/time-entries", user=viewer, user_id=target.id)
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "NOT_FOUND"
    assert client.ids(user=staff.manager, user_id=staff.deep_member.id) == [
        entries[staff.deep_member.id]
    ]


def test_a_team_filter_intersects_with_the_scope(client: Client, db: Engine) -> None:
    staff, entries = _staffed(client, db)
    team_a = staff.team_a
    # A member filtering by their team still sees only themselves.
    assert client.ids(user=staff.member, team_id=team_a) == [entries[staff.member.id]]
    # The owner sees the team and everything below it.
    assert set(client.ids(team_id=team_a)) == {
        entries[u.id] for u in (staff.manager, staff.member, staff.lead_below, staff.deep_member)
    }


def test_another_organization_is_a_404(client: Client, db: Engine) -> None:
    stranger = make_user(db)
    outsider = make_org(db).owner
    client.entry(at("2026-11-02"), 60)
    response = client.get("/time-entries", user=stranger)
    assert response.status_code == 404
    assert response.json()["error_code"] == "NOT_FOUND"
    assert client.get("/time-entries", user=outsider).status_code == 404


# --- Bad parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 10_000}, "page_size"),
        ({"page": 0}, "page"),
        ({"from": "2026-11-05", "to": "2026-11-04"}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
        ({"from": "2026-13-01"}, "from"),
        ({"sort": "duration"}, "sort"),
        ({"running": "maybe"}, "running"),
        ({"billable": "sometimes"}, "billable"),
        ({"project_id": "not-a-uuid"}, "project_id"),
        ({"search": "x" * 201}, "search"),
        ({"search": "nul\x00byte"}, "search"),
    ],
)
def test_bad_parameters_are_422s_naming_the_parameter(
    client: Client, params: dict[str, Any], field: str
) -> None:
    assert error_field(client.get("/time-entries", **params)) == field
