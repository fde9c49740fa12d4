"""Making and revoking shared report links (API.md, "Shared reports"): managers and up
make them, with the parameters their report's endpoint takes, checked as it checks them;
the token is shown once and stored as its SHA-256 only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.security import hash_opaque_token
from tests.factories import OrgHandle, UserHandle, add_member, change_rows, make_org

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def create(
    api: httpx.Client,
    org: OrgHandle,
    user: UserHandle | None = None,
    status: int = 201,
    **body: Any,
) -> dict[str, Any]:
    body.setdefault("name", "For the client")
    body.setdefault("kind", "summary")
    body.setdefault("params", {**MARCH, "group_by": "project"})
    response = api.post(org.path("/shared-reports"), json=body, headers=(user or org.owner).headers)
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()["data"] if status < 400 else response.json()
    return data


def test_a_link_shows_its_token_once_and_keeps_its_hash(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    manager = add_member(db, org, "manager")
    link = create(api, org, manager, params={**MARCH, "group_by": "User, week", "billable": True})
    assert link["params"] == {**MARCH, "group_by": ["user", "week"], "billable": True}
    assert link["url"] == f"/api/v1/public/reports/{link['token']}"
    with db.connect() as conn:
        row = (
            conn.execute(text("SELECT * FROM shared_reports WHERE id = :id"), {"id": link["id"]})
            .mappings()
            .one()
        )
    assert row["token_hash"] == hash_opaque_token(link["token"])
    assert link["token"] not in str(dict(row))
    assert row["created_by"] == manager.id
    (change,) = change_rows(db, uuid.UUID(link["id"]))
    assert (change["entity"], change["op"]) == ("shared_report", "created")
    assert link["token"] not in str(change)
    assert row["token_hash"] not in str(change)


def test_members_may_not_share(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    refused = create(api, org, add_member(db, org, "member"), status=403)
    assert refused["error_code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("summary", {**MARCH}, "summary.params.group_by"),
        ("summary", {**MARCH, "group_by": "planet"}, "summary.params.group_by.0"),
        ("summary", {**MARCH, "group_by": "user,week,day"}, "summary.params.group_by"),
        ("summary", {**MARCH, "group_by": "user,user"}, "summary.params.group_by"),
        ("summary", {"to": "2026-03-31", "group_by": "user"}, "summary.params.from"),
        (
            "summary",
            {"from": "2026-04-01", "to": "2026-03-31", "group_by": "user"},
            "summary.params",
        ),
        (
            "summary",
            {"from": "2020-01-01", "to": "2026-03-31", "group_by": "user"},
            "summary.params",
        ),
        ("summary", {**MARCH, "group_by": "user", "week": "2026-W10"}, "summary.params.week"),
        ("detailed", {**MARCH, "user_id": "nobody"}, "detailed.params.user_id"),
        ("detailed", {"from": "2026-02-30", "to": "2026-03-31"}, "detailed.params.from"),
        ("detailed", {**MARCH, "billable": "perhaps"}, "detailed.params.billable"),
        ("timesheet", {}, "timesheet.params.week"),
        ("timesheet", {"week": "2026-10"}, "timesheet.params.week"),
        ("timesheet", {"week": "2026-W54"}, "timesheet.params.week"),
        ("timesheet", {"week": "2026-W10", **MARCH}, "timesheet.params.from"),
        ("weekly", {}, "body"),
    ],
)
def test_params_are_checked_as_the_reports_check_them(
    api: httpx.Client, db: Engine, kind: str, params: dict[str, Any], field: str
) -> None:
    org = make_org(db)
    refused = create(api, org, status=422, kind=kind, params=params)
    assert refused["error_code"] == "VALIDATION_ERROR"
    fields = [detail["field"] for detail in refused["details"]]
    assert field in fields, refused["details"]


def test_a_link_expires_in_the_future(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = create(api, org, status=422, expires_at=past)
    assert refused["details"][0]["field"] == "summary.expires_at"
    assert "future" in refused["details"][0]["message"]


def test_a_user_or_team_outside_the_creators_scope_is_a_404(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    manager = add_member(db, org, "manager")
    member = add_member(db, org, "member")
    stranger = add_member(db, make_org(db), "member")
    for user_id in (member.id, stranger.id):
        params = {"week": "2026-W10", "user_id": str(user_id)}
        refused = create(api, org, manager, status=404, kind="timesheet", params=params)
        assert refused["error"] == f"User with identifier '{user_id}' not found"
    # An admin sees the whole organization; the manager themselves.
    create(api, org, kind="timesheet", params={"week": "2026-W10", "user_id": str(member.id)})
    create(
        api, org, manager, kind="timesheet", params={"week": "2026-W10", "user_id": str(manager.id)}
    )
    team_id = str(uuid.uuid4())
    refused = create(api, org, status=404, kind="detailed", params={**MARCH, "team_id": team_id})
    assert refused["error"] == f"Team with identifier '{team_id}' not found"


def test_the_creator_or_an_admin_revokes(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    manager = add_member(db, org, "manager")
    other = add_member(db, org, "manager", user=None)
    link = create(api, org, manager)
    path = org.path(f"/shared-reports/{link['id']}")
    assert api.delete(path, headers=other.headers).status_code == 404
    assert api.delete(path, headers=manager.headers).status_code == 204
    assert api.delete(path, headers=manager.headers).status_code == 404
    by_admin = create(api, org, manager)
    path = org.path(f"/shared-reports/{by_admin['id']}")
    assert api.delete(path, headers=org.owner.headers).status_code == 204
    ops = [change["op"] for change in change_rows(db, uuid.UUID(by_admin["id"]))]
    assert ops == ["created", "deleted"]
