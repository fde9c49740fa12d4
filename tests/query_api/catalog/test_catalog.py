"""Every catalog endpoint's success path, on data written through the command API."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from tests.factories import add_member, make_org, make_user
from tests.query_api.catalog.helpers import Reader, Writer, entry, ids


def test_me_lists_my_memberships_by_organization_name(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    me = make_user(db, full_name="Ada Lovelace")
    first = make_org(db, owner=me)
    second = make_org(db)
    add_member(db, second, "manager", user=me)
    writer.send("PATCH", "/users/me", me, {"full_name": "Ada King"}, status=200)

    data = reader.data("/me", me)

    assert data["id"] == str(me.id)
    assert data["email"] == me.email
    assert data["full_name"] == "Ada King"
    assert data["timezone"] == "UTC"
    expected = sorted(
        [(str(first.id), "owner"), (str(second.id), "manager")],
        key=lambda pair: f"Org {pair[0].replace('-', '')[:6]}",
    )
    assert [(m["organization"]["id"], m["role"]) for m in data["memberships"]] == expected
    assert all(m["organization"]["name"].startswith("Org ") for m in data["memberships"])


def test_organizations_list_and_one_with_settings_and_my_role(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    me = make_user(db)
    mine = make_org(db, owner=me)
    other = make_org(db, timezone="Europe/Berlin", currency="USD", week_start=7)
    add_member(db, other, "member", user=me)
    make_org(db)  # not mine
    writer.send(
        "PATCH",
        mine.path(),
        me,
        {
            "name": "Acme",
            "hourly_rate": 5000,
            "prevent_overlaps": True,
            "lock_before": "2026-01-01",
            "long_running_timer_seconds": 3600,
        },
        status=200,
    )

    response = reader.get("/organizations", me)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pagination"]["total"] == 2
    assert body["pagination"]["has_next"] is False
    assert {o["id"]: o["role"] for o in body["data"]} == {
        str(mine.id): "owner",
        str(other.id): "member",
    }

    acme = reader.data(mine.path(), me)
    assert acme == {
        "id": str(mine.id),
        "name": "Acme",
        "timezone": "UTC",
        "currency": "EUR",
        "week_start": 1,
        "hourly_rate": 5000,
        "prevent_overlaps": True,
        "lock_before": "2026-01-01",
        "long_running_timer_seconds": 3600,
        "created_at": acme["created_at"],
        "role": "owner",
    }
    datetime.fromisoformat(acme["created_at"])
    berlin = reader.data(other.path(), me)
    assert (berlin["timezone"], berlin["currency"], berlin["week_start"], berlin["role"]) == (
        "Europe/Berlin",
        "USD",
        7,
        "member",
    )


def test_organizations_paginate(db: Engine, writer: Writer, reader: Reader) -> None:
    me = make_user(db)
    orgs = [make_org(db, owner=me) for _ in range(3)]
    writer.create(orgs[0], "/tags", {"name": "a write whose token covers the orgs"})
    response = reader.get("/organizations", me, page=2, page_size=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["data"]) == 1
    assert body["pagination"] == {
        "total": 3,
        "page": 2,
        "page_size": 2,
        "total_pages": 2,
        "has_next": False,
        "has_previous": True,
        "next_cursor": None,
    }


def test_members_with_roles_teams_and_filters(db: Engine, writer: Writer, reader: Reader) -> None:
    org = make_org(db)
    lead = add_member(db, org, "manager", hourly_rate_amount=7000)
    worker = add_member(db, org, "member", hourly_rate_amount=4000)
    loner = add_member(db, org, "member")
    parent = writer.create(org, "/teams", {"name": "Engineering"})
    child = writer.create(org, "/teams", {"name": "Backend", "parent_id": str(parent)})
    writer.send(
        "PUT", org.path(f"/teams/{parent}/members/{lead.id}"), org.owner, {"is_lead": True}, 200
    )
    writer.send("PUT", org.path(f"/teams/{child}/members/{lead.id}"), org.owner, {}, 200)
    writer.send("PUT", org.path(f"/teams/{child}/members/{worker.id}"), org.owner, {}, 200)

    response = reader.get(org.path("/members"), org.owner)
    assert response.status_code == 200, response.text
    members = {m["user_id"]: m for m in response.json()["data"]}
    assert response.json()["pagination"]["total"] == 4
    assert members[str(lead.id)]["role"] == "manager"
    assert members[str(lead.id)]["hourly_rate"] == 7000
    assert members[str(lead.id)]["email"] == lead.email
    assert members[str(lead.id)]["teams"] == [
        {"id": str(child), "name": "Backend", "is_lead": False},
        {"id": str(parent), "name": "Engineering", "is_lead": True},
    ]
    assert members[str(worker.id)]["teams"] == [
        {"id": str(child), "name": "Backend", "is_lead": False}
    ]
    assert members[str(loner.id)]["teams"] == []
    assert members[str(org.owner.id)]["role"] == "owner"

    in_parent = reader.data(org.path("/members"), org.owner, team_id=str(parent))
    assert {m["user_id"] for m in in_parent} == {str(lead.id), str(worker.id)}  # sub-team too
    in_child = reader.data(org.path("/members"), org.owner, team_id=str(child))
    assert {m["user_id"] for m in in_child} == {str(lead.id), str(worker.id)}
    plain = reader.data(org.path("/members"), org.owner, role="member")
    assert {m["user_id"] for m in plain} == {str(worker.id), str(loner.id)}
    both = reader.data(org.path("/members"), org.owner, role="member", team_id=str(parent))
    assert [m["user_id"] for m in both] == [str(worker.id)]


def test_teams_tree_parents_first_with_leads_and_member_counts(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    org = make_org(db)
    ana = add_member(db, org, "manager", user=make_user(db, full_name="Ana"))
    bob = add_member(db, org, "manager", user=make_user(db, full_name="Bob"))
    cleo = add_member(db, org, "member", user=make_user(db, full_name="Cleo"))
    # Created children first, under names that sort before their parents.
    zulu = writer.create(org, "/teams", {"name": "Zulu"})
    alpha = writer.create(org, "/teams", {"name": "Alpha", "parent_id": str(zulu)})
    aardvark = writer.create(org, "/teams", {"name": "Aardvark", "parent_id": str(alpha)})
    mike = writer.create(org, "/teams", {"name": "Mike"})
    for user, is_lead in ((bob, True), (ana, True), (cleo, False)):
        writer.send(
            "PUT",
            org.path(f"/teams/{zulu}/members/{user.id}"),
            org.owner,
            {"is_lead": is_lead},
            200,
        )
    writer.send("PUT", org.path(f"/teams/{aardvark}/members/{cleo.id}"), org.owner, {}, 200)

    teams = reader.data(org.path("/teams"), cleo)

    assert ids(teams) == [str(mike), str(zulu), str(alpha), str(aardvark)]
    by_id = {t["id"]: t for t in teams}
    assert by_id[str(zulu)] == {
        "id": str(zulu),
        "name": "Zulu",
        "parent_id": None,
        "version": 1,  # putting members in it writes links, not the team
        "updated_at": by_id[str(zulu)]["updated_at"],
        "leads": [{"id": str(ana.id), "full_name": "Ana"}, {"id": str(bob.id), "full_name": "Bob"}],
        "member_count": 3,
    }
    assert by_id[str(alpha)]["parent_id"] == str(zulu)
    assert by_id[str(alpha)]["member_count"] == 0
    assert by_id[str(aardvark)]["parent_id"] == str(alpha)
    assert by_id[str(aardvark)]["leads"] == []
    assert by_id[str(aardvark)]["member_count"] == 1

    page = reader.get(org.path("/teams"), cleo, page=2, page_size=3).json()
    assert ids(page["data"]) == [str(aardvark)]
    assert page["pagination"]["total"] == 4


def test_clients_and_the_archived_filter(db: Engine, writer: Writer, reader: Reader) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    beta = writer.create(org, "/clients", {"name": "Beta"})
    alpha = writer.create(org, "/clients", {"name": "Alpha"})
    archived = writer.send(
        "PATCH", org.path(f"/clients/{beta}"), org.owner, {"archived": True}, 200
    )

    everything = reader.data(org.path("/clients"), member)
    assert everything == [
        {
            "id": str(alpha),
            "name": "Alpha",
            "archived": False,
            "version": 1,
            "updated_at": everything[0]["updated_at"],
        },
        {
            "id": str(beta),
            "name": "Beta",
            "archived": True,
            "version": archived["version"],
            "updated_at": archived["updated_at"],
        },
    ]
    assert ids(reader.data(org.path("/clients"), member, archived="true")) == [str(beta)]
    assert ids(reader.data(org.path("/clients"), member, archived="false")) == [str(alpha)]


def test_projects_with_client_totals_budget_and_filters(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    org = make_org(db)
    client = writer.create(org, "/clients", {"name": "Globex"})
    web = writer.create(
        org,
        "/projects",
        {
            "name": "Website 100%",
            "client_id": str(client),
            "color": "#112233",
            "hourly_rate": 6000,
            "budget_seconds": 36000,
            "budget_amount": 10000,
        },
    )
    intern = writer.create(org, "/projects", {"name": "Internal", "billable": False})
    old = writer.create(org, "/projects", {"name": "Old website"})
    writer.send("PATCH", org.path(f"/projects/{old}"), org.owner, {"archived": True}, 200)
    entry(
        writer, org, org.owner, "2025-03-03T09:00:00Z", "2025-03-03T10:00:00Z", project_id=str(web)
    )
    entry(
        writer,
        org,
        org.owner,
        "2025-03-04T09:00:00Z",
        "2025-03-04T09:30:00Z",
        project_id=str(web),
        billable=False,
    )
    entry(
        writer,
        org,
        org.owner,
        "2025-03-05T09:00:00Z",
        "2025-03-05T11:00:00Z",
        project_id=str(intern),
    )

    response = reader.get(org.path("/projects"), org.owner)
    assert response.status_code == 200, response.text
    projects = response.json()["data"]
    assert [p["name"] for p in projects] == ["Internal", "Old website", "Website 100%"]
    website = projects[2]
    assert website == {
        "id": str(web),
        "name": "Website 100%",
        "client": {"id": str(client), "name": "Globex"},
        "color": "#112233",
        "billable": True,
        "hourly_rate": 6000,
        "budget_seconds": 36000,
        "budget_amount": 10000,
        "archived": False,
        "version": 1,
        "updated_at": website["updated_at"],
        "tracked_seconds": 5400,
        "billable_seconds": 3600,
        "amount": 6000,
        # time: 5400 / 36000 = 0.15; money: 6000 / 10000 = 0.6 -> the larger one
        "budget_used": 0.6,
    }
    internal = projects[0]
    assert internal["client"] is None
    assert (internal["tracked_seconds"], internal["billable_seconds"], internal["amount"]) == (
        7200,
        0,
        0,
    )
    assert internal["budget_used"] is None
    assert projects[1]["tracked_seconds"] == 0

    def names(**params: str) -> list[str]:
        return [p["name"] for p in reader.data(org.path("/projects"), org.owner, **params)]

    assert names(client_id=str(client)) == ["Website 100%"]
    assert names(archived="true") == ["Old website"]
    assert names(archived="false") == ["Internal", "Website 100%"]
    assert names(search="WEBSITE") == ["Old website", "Website 100%"]
    assert names(search="100%") == ["Website 100%"]  # % is a character, not a wildcard
    assert names(search="0%") == ["Website 100%"]
    assert names(search="_") == []
    assert names(search="  ") == ["Internal", "Old website", "Website 100%"]
    assert names(search="site", archived="false") == ["Website 100%"]

    one = reader.data(org.path(f"/projects/{web}"), org.owner)
    assert one == website


def test_budget_use_from_time_only_and_running_timers_do_not_count(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    project = writer.create(org, "/projects", {"name": "P", "budget_seconds": 7200})
    entry(
        writer, org, member, "2025-03-03T09:00:00Z", "2025-03-03T10:30:00Z", project_id=str(project)
    )
    writer.send("POST", org.path("/timer/start"), member, {"project_id": str(project)})

    data = reader.data(org.path(f"/projects/{project}"), member)
    assert data["tracked_seconds"] == 5400
    assert data["budget_used"] == 0.75


def test_tasks_with_totals_budget_and_done_filter(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    org = make_org(db)
    project = writer.create(org, "/projects", {"name": "P", "hourly_rate": 3600})
    design = writer.create(
        org, f"/projects/{project}/tasks", {"name": "Design", "budget_seconds": 3600}
    )
    build = writer.create(org, f"/projects/{project}/tasks", {"name": "Build"})
    writer.send(
        "PATCH", org.path(f"/projects/{project}/tasks/{build}"), org.owner, {"done": True}, 200
    )
    entry(
        writer,
        org,
        org.owner,
        "2025-03-03T09:00:00Z",
        "2025-03-03T09:45:00Z",
        project_id=str(project),
        task_id=str(design),
    )
    entry(
        writer,
        org,
        org.owner,
        "2025-04-03T09:00:00Z",
        "2025-04-03T09:15:00Z",
        project_id=str(project),
        task_id=str(design),
        billable=False,
    )

    response = reader.get(org.path(f"/projects/{project}/tasks"), org.owner)
    assert response.status_code == 200, response.text
    tasks = response.json()["data"]
    assert tasks == [
        {
            "id": str(build),
            "project_id": str(project),
            "name": "Build",
            "budget_seconds": None,
            "done": True,
            "version": 2,
            "updated_at": tasks[0]["updated_at"],
            "tracked_seconds": 0,
            "billable_seconds": 0,
            "amount": 0,
            "budget_used": None,
        },
        {
            "id": str(design),
            "project_id": str(project),
            "name": "Design",
            "budget_seconds": 3600,
            "done": False,
            "version": 1,
            "updated_at": tasks[1]["updated_at"],
            "tracked_seconds": 3600,
            "billable_seconds": 2700,
            "amount": 2700,
            "budget_used": 1.0,
        },
    ]
    assert ids(reader.data(org.path(f"/projects/{project}/tasks"), org.owner, done="true")) == [
        str(build)
    ]
    assert ids(reader.data(org.path(f"/projects/{project}/tasks"), org.owner, done="false")) == [
        str(design)
    ]


def test_tags_by_name_paginated(db: Engine, writer: Writer, reader: Reader) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    created = {name: writer.create(org, "/tags", {"name": name}) for name in ("b", "a", "c")}
    response = reader.get(org.path("/tags"), member, page_size=2)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [{k: v for k, v in tag.items() if k != "updated_at"} for tag in body["data"]] == [
        {"id": str(created["a"]), "name": "a", "version": 1},
        {"id": str(created["b"]), "name": "b", "version": 1},
    ]
    assert body["pagination"]["total"] == 3
    assert body["pagination"]["has_next"] is True


def test_timer_shows_my_running_entry_like_an_entry(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    org = make_org(db)
    me = add_member(db, org, "member", user=make_user(db, full_name="Tim"))
    client = writer.create(org, "/clients", {"name": "Initech"})
    project = writer.create(
        org, "/projects", {"name": "TPS", "client_id": str(client), "color": "#abcdef"}
    )
    task = writer.create(org, f"/projects/{project}/tasks", {"name": "Reports"})
    tag_ids = sorted(str(writer.create(org, "/tags", {"name": n})) for n in ("x", "y"))
    assert reader.data(org.path("/timer"), me) is None

    started = writer.send(
        "POST",
        org.path("/timer/start"),
        me,
        {
            "project_id": str(project),
            "task_id": str(task),
            "description": "cover sheets",
            "tag_ids": tag_ids,
        },
    )
    timer = reader.data(org.path("/timer"), me)

    assert timer["start_at"].endswith("Z")
    start_at = datetime.fromisoformat(timer["start_at"])
    elapsed = (datetime.now(UTC) - start_at).total_seconds()
    assert 0 <= timer["duration_seconds"] <= elapsed + 1
    assert timer == {
        "id": started["id"],
        "user": {"id": str(me.id), "full_name": "Tim"},
        "project": {"id": str(project), "name": "TPS", "color": "#abcdef"},
        "client": {"id": str(client), "name": "Initech"},
        "task": {"id": str(task), "name": "Reports"},
        "tags": timer["tags"],
        "description": "cover sheets",
        "start_at": timer["start_at"],
        "end_at": None,
        "duration_seconds": timer["duration_seconds"],
        "billable": True,
        "amount": 0,
    }
    assert [t["id"] for t in timer["tags"]] == tag_ids
    assert sorted(t["name"] for t in timer["tags"]) == ["x", "y"]
    assert reader.data(org.path("/timer"), org.owner) is None  # someone else's timer

    writer.send("POST", org.path("/timer/stop"), me, status=200)
    assert reader.data(org.path("/timer"), me) is None


def test_timer_in_another_organization_is_not_mine_here(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    me = make_user(db)
    here = make_org(db, owner=me)
    there = make_org(db)
    add_member(db, there, "member", user=me)
    writer.send("POST", there.path("/timer/start"), me, {"description": "elsewhere"})
    assert reader.data(here.path("/timer"), me) is None
    assert reader.data(there.path("/timer"), me)["description"] == "elsewhere"
