"""One table walks every query endpoint with every role and checks exactly whose time
each role sees (API.md "Who sees what").

The world: owner, admin, a manager leading team Alpha (with sub-team Beta), Walt in
Alpha, Uma in Beta, Xena in no team, and an outsider. Everyone tracked a distinct number
of minutes today on one project, so any total names exactly the set of people it counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.factories import OrgHandle, UserHandle, add_member, make_org, make_user

PEOPLE = ("owner", "admin", "manager", "walt", "uma", "xena")
MINUTES = {name: 2**i for i, name in enumerate(PEOPLE)}  # any subset has a unique sum
SCOPE = {
    "owner": set(PEOPLE),
    "admin": set(PEOPLE),
    "manager": {"manager", "walt", "uma"},
    "walt": {"walt"},
    "uma": {"uma"},
    "xena": {"xena"},
}


@dataclass
class World:
    org: OrgHandle
    people: dict[str, UserHandle]
    outsider: UserHandle
    project_id: str
    token: str
    today: str

    def names_of(self, ids: set[str]) -> set[str]:
        by_id = {str(user.id): name for name, user in self.people.items()}
        return {by_id[i] for i in ids}

    def names_in_seconds(self, seconds: int) -> set[str]:
        return {name for name in PEOPLE if (seconds // 60) & MINUTES[name]}


@pytest.fixture
def world(api: httpx.Client, db: Engine, projector_running: BackgroundProjector) -> World:
    owner = make_user(db, full_name="Owner")
    # Before the posts, so the consistency token of the last one covers the outsider too.
    outsider = make_user(db)
    org = make_org(db, owner)
    people = {"owner": owner}
    for name, role in (
        ("admin", "admin"),
        ("manager", "manager"),
        ("walt", "member"),
        ("uma", "member"),
        ("xena", "member"),
    ):
        people[name] = add_member(db, org, role, user=make_user(db, full_name=name.title()))
    headers = owner.headers

    def post(path: str, body: object, method: str = "POST") -> httpx.Response:
        response = api.request(method, org.path(path), json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        return response

    alpha = post("/teams", {"name": "Alpha"}).json()["data"]["id"]
    beta = post("/teams", {"name": "Beta", "parent_id": alpha}).json()["data"]["id"]
    post(f"/teams/{alpha}/members/{people['manager'].id}", {"is_lead": True}, "PUT")
    post(f"/teams/{alpha}/members/{people['walt'].id}", {}, "PUT")
    post(f"/teams/{beta}/members/{people['uma'].id}", {}, "PUT")
    project = post("/projects", {"name": "P", "hourly_rate": 6000}).json()["data"]["id"]
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last = None
    for i, name in enumerate(PEOPLE):
        start = midnight + timedelta(minutes=70 * i)
        last = post(
            "/time-entries",
            {
                "start_at": start.isoformat(),
                "end_at": (start + timedelta(minutes=MINUTES[name])).isoformat(),
                "project_id": project,
                "billable": True,
                "user_id": str(people[name].id),
            },
        )
    assert last is not None
    return World(
        org,
        people,
        outsider,
        project,
        last.headers["X-Consistency-Token"],
        midnight.date().isoformat(),
    )


def week_of(day: str) -> str:
    year, week, _ = datetime.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


Probe = Callable[[httpx.Client, World, dict[str, str]], set[str]]


def _get(
    qapi: httpx.Client, w: World, headers: dict[str, str], path: str, **params: str
) -> dict[str, Any]:
    response = qapi.get(w.org.path(path), params=params, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def entries_users(qapi: httpx.Client, w: World, h: dict[str, str]) -> set[str]:
    data = _get(qapi, w, h, "/time-entries", page_size="200")["data"]
    return w.names_of({e["user"]["id"] for e in data})


def detailed_users(qapi: httpx.Client, w: World, h: dict[str, str]) -> set[str]:
    body = _get(qapi, w, h, "/reports/detailed", **{"from": w.today, "to": w.today})
    from_entries = w.names_of({e["user"]["id"] for e in body["data"]["entries"]})
    assert w.names_in_seconds(body["data"]["totals"]["seconds"]) == from_entries
    return from_entries


def summary_users(qapi: httpx.Client, w: World, h: dict[str, str]) -> set[str]:
    body = _get(qapi, w, h, "/reports/summary", group_by="user", **{"from": w.today, "to": w.today})
    groups = w.names_of({g["key"] for g in body["data"]["groups"]})
    assert w.names_in_seconds(body["data"]["totals"]["seconds"]) == groups
    return groups


def dashboard_users(qapi: httpx.Client, w: World, h: dict[str, str]) -> set[str]:
    return w.names_in_seconds(_get(qapi, w, h, "/dashboard")["data"]["today"]["seconds"])


def project_users(qapi: httpx.Client, w: World, h: dict[str, str]) -> set[str]:
    project = _get(qapi, w, h, f"/projects/{w.project_id}")["data"]
    return w.names_in_seconds(project["tracked_seconds"])


def timesheet_users(qapi: httpx.Client, w: World, h: dict[str, str]) -> set[str]:
    seen = set()
    for name, user in w.people.items():
        response = qapi.get(
            w.org.path("/reports/timesheet"),
            headers=h,
            params={"week": week_of(w.today), "user_id": str(user.id)},
        )
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200 and response.json()["data"]["total"] > 0:
            seen.add(name)
    return seen


def user_filter_users(qapi: httpx.Client, w: World, h: dict[str, str]) -> set[str]:
    """Asking for someone outside the scope is a 404, not an empty answer."""
    seen = set()
    for name, user in w.people.items():
        response = qapi.get(
            w.org.path("/time-entries"), headers=h, params={"user_id": str(user.id)}
        )
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            assert response.json()["data"], name
            seen.add(name)
    return seen


PROBES: dict[str, Probe] = {
    "time-entries": entries_users,
    "reports/detailed": detailed_users,
    "reports/summary": summary_users,
    "dashboard": dashboard_users,
    "projects/{id}": project_users,
    "reports/timesheet": timesheet_users,
    "time-entries?user_id": user_filter_users,
}


@pytest.mark.parametrize("role", sorted(SCOPE))
def test_every_endpoint_shows_each_role_exactly_its_scope(
    role: str, world: World, qapi: httpx.Client
) -> None:
    headers = {**world.people[role].headers, "X-Consistency-Token": world.token}
    seen = {endpoint: probe(qapi, world, headers) for endpoint, probe in PROBES.items()}
    assert seen == {endpoint: SCOPE[role] for endpoint in PROBES}


CATALOG_PATHS = (
    "",
    "/members",
    "/teams",
    "/clients",
    "/projects",
    "/tags",
    "/timer",
    "/time-entries",
    "/reports/summary?group_by=user&from=2026-01-01&to=2026-01-31",
    "/dashboard",
)


def test_an_outsider_gets_404_everywhere(world: World, qapi: httpx.Client) -> None:
    headers = {**world.outsider.headers, "X-Consistency-Token": world.token}
    for path in (*CATALOG_PATHS, f"/projects/{world.project_id}"):
        response = qapi.get(world.org.path(path), headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error_code"] == "NOT_FOUND"


def test_a_client_reads_its_own_writes_every_time(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    org = make_org(db)
    start = datetime(2026, 5, 4, 8, tzinfo=UTC)
    for i in range(15):
        written = api.post(
            org.path("/time-entries"),
            headers=org.owner.headers,
            json={
                "start_at": (start + timedelta(hours=i)).isoformat(),
                "end_at": (start + timedelta(hours=i, minutes=30)).isoformat(),
            },
        )
        assert written.status_code == 201, written.text
        read = qapi.get(
            org.path("/time-entries"),
            params={"page_size": "200"},
            headers={
                **org.owner.headers,
                "X-Consistency-Token": written.headers["X-Consistency-Token"],
            },
        )
        assert read.status_code == 200, read.text
        assert written.json()["data"]["id"] in {e["id"] for e in read.json()["data"]}
        assert len(read.json()["data"]) == i + 1


def _reads_taking_user_id(w: World) -> dict[str, tuple[str, dict[str, str]]]:
    """Every read that takes `user_id`, with the other parameters it needs."""
    days = {"from": w.today, "to": w.today}
    return {
        "time-entries": ("/time-entries", {}),
        "detailed": ("/reports/detailed", days),
        "detailed csv": ("/reports/detailed", {**days, "format": "csv"}),
        "detailed xlsx": ("/reports/detailed", {**days, "format": "xlsx"}),
        "summary": ("/reports/summary", {**days, "group_by": "user"}),
        "summary csv": ("/reports/summary", {**days, "group_by": "user", "format": "csv"}),
        "timesheet": ("/reports/timesheet", {"week": week_of(w.today)}),
        "dashboard": ("/dashboard", {}),
    }


@pytest.mark.parametrize("role", ["owner", "admin", "manager"])
def test_a_user_filter_outside_the_organization_is_a_404_on_every_read(
    role: str, world: World, qapi: httpx.Client
) -> None:
    """Admins and owners see the whole organization, not every user id there is: a user of
    another organization, or no one at all, is a 404 (API.md), never an empty 200."""
    headers = {**world.people[role].headers, "X-Consistency-Token": world.token}
    strangers = {"another organization's user": world.outsider.id, "no one": uuid.uuid4()}
    answers = {}
    for read, (path, params) in _reads_taking_user_id(world).items():
        for who, user_id in strangers.items():
            response = qapi.get(
                world.org.path(path), params={**params, "user_id": str(user_id)}, headers=headers
            )
            body = response.json() if response.status_code != 200 else {}
            answers[read, who] = (response.status_code, body.get("error_code"))
        # The caller themselves, a member in their scope, stays a 200.
        mine = {**params, "user_id": str(world.people[role].id)}
        assert qapi.get(world.org.path(path), params=mine, headers=headers).status_code == 200
    assert answers == {key: (404, "NOT_FOUND") for key in answers}
