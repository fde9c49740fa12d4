"""member_added and role_changed from the change log, the inbox (GET /notifications) and
reading notifications (POST /notifications/{id}/read, POST /notifications/read-all)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import Engine, text

from projections.rebuild import rebuild, verify
from tests.conftest import BackgroundProjector
from tests.factories import OrgHandle, UserHandle, change_rows, make_org, make_user
from tests.notifications.helpers import inbox, notification_rows, sessions
from tests.projections.conftest import drain


def add_member_by_api(
    api: httpx.Client, org: OrgHandle, user: UserHandle, role: str = "member"
) -> str:
    response = api.post(
        org.path("/members"), json={"email": user.email, "role": role}, headers=org.owner.headers
    )
    assert response.status_code == 201, response.text
    return response.headers["X-Consistency-Token"]


def test_a_member_added_is_told_once_in_their_inbox(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    org = make_org(db)
    member = make_user(db)
    token = add_member_by_api(api, org, member, "manager")

    [notification] = inbox(qapi, member, token)
    assert notification["kind"] == "member_added"
    assert notification["org_id"] == str(org.id)
    assert notification["read_at"] is None
    assert "added to" in notification["title"]
    assert notification["data"]["role"] == "manager"
    assert set(notification) == {
        "id", "org_id", "kind", "title", "body", "data", "created_at", "read_at",
    }  # fmt: skip
    [row] = notification_rows(db, member.id)
    assert row["in_app"] is True
    assert row["email_status"] == "skipped"  # the default settings: no email
    assert inbox(qapi, org.owner, token) == []  # nothing for the one who added them


def test_the_creator_of_an_organization_is_not_told_they_were_added(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    user = make_user(db)
    response = api.post(
        "/organizations",
        json={"name": "Mine", "timezone": "UTC", "currency": "EUR"},
        headers=user.headers,
    )
    assert response.status_code == 201, response.text
    assert inbox(qapi, user, response.headers["X-Consistency-Token"]) == []


def test_a_role_change_is_told_to_the_member_and_a_rate_change_is_not(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    org = make_org(db)
    member = make_user(db)
    add_member_by_api(api, org, member)
    rate = api.patch(
        org.path(f"/members/{member.id}"), json={"hourly_rate": 5000}, headers=org.owner.headers
    )
    assert rate.status_code == 200, rate.text
    role = api.patch(
        org.path(f"/members/{member.id}"), json={"role": "admin"}, headers=org.owner.headers
    )
    assert role.status_code == 200, role.text

    kinds = [n["kind"] for n in inbox(qapi, member, role.headers["X-Consistency-Token"])]
    assert kinds == ["role_changed", "member_added"]  # newest first
    [changed] = inbox(qapi, member, unread=True, page_size=1)
    assert changed["data"] == {
        "org_id": str(org.id),
        "membership_id": changed["data"]["membership_id"],
        "role": "admin",
        "old_role": "member",
    }
    assert "from member to admin" in changed["body"]


def test_removed_and_added_again_is_told_again(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    org = make_org(db)
    member = make_user(db)
    add_member_by_api(api, org, member)
    removed = api.delete(org.path(f"/members/{member.id}"), headers=org.owner.headers)
    assert removed.status_code == 204, removed.text
    token = add_member_by_api(api, org, member)
    assert [n["kind"] for n in inbox(qapi, member, token)] == ["member_added", "member_added"]


def test_replaying_the_log_and_rebuilding_make_no_second_notification(
    api: httpx.Client, qapi: httpx.Client, db: Engine
) -> None:
    # No projector thread: a rebuild racing a concurrent advance of the same projection
    # can fail with a serialization error (projections/rebuild.py takes its snapshot
    # before the projection's lock).
    org = make_org(db)
    member = make_user(db)
    token = add_member_by_api(api, org, member)
    drain(sessions(db))
    assert len(inbox(qapi, member, token)) == 1
    # Move the checkpoint back: every change is applied a second time.
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE projection_checkpoints SET tx = '0'::xid8, change_id = 0"
                " WHERE name = 'notifications'"
            )
        )
    drain(sessions(db))
    rebuild(sessions(db), "notifications")
    drain(sessions(db))
    assert len(notification_rows(db, member.id)) == 1
    assert len(inbox(qapi, member)) == 1
    assert verify(sessions(db), "notifications", org_ids=[org.id]).ok


def test_reading_one_notification(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    org, other = make_org(db), make_org(db)
    member = make_user(db)
    add_member_by_api(api, org, member)
    token = add_member_by_api(api, other, member)
    # Read the one from `other`; the one from `org` stays unread.
    first, second = sorted(inbox(qapi, member, token), key=lambda n: n["org_id"] != str(other.id))

    response = api.post(f"/notifications/{first['id']}/read", headers=member.headers)
    assert response.status_code == 204, response.text
    token = response.headers["X-Consistency-Token"]
    assert [n["id"] for n in inbox(qapi, member, token, unread=True)] == [second["id"]]
    assert [n["id"] for n in inbox(qapi, member, token, unread=False)] == [first["id"]]
    read = inbox(qapi, member, token)[0]
    assert read["read_at"] is not None

    [change] = change_rows(db, uuid.UUID(first["id"]))[1:]
    assert change["entity"] == "notification"
    assert change["op"] == "updated"
    assert change["org_id"] == other.id
    assert change["payload"]["old"]["read_at"] is None
    assert change["payload"]["new"]["read_at"] is not None

    again = api.post(f"/notifications/{first['id']}/read", headers=member.headers)
    assert again.status_code == 204
    assert len(change_rows(db, uuid.UUID(first["id"]))) == 2  # reading twice writes nothing
    assert (
        inbox(qapi, member, again.headers["X-Consistency-Token"])[0]["read_at"] == (read["read_at"])
    )


@pytest.mark.parametrize("whose", ["someone else's", "unknown"])
def test_reading_a_notification_that_is_not_yours_is_a_404(
    api: httpx.Client,
    qapi: httpx.Client,
    db: Engine,
    projector_running: BackgroundProjector,
    whose: str,
) -> None:
    org = make_org(db)
    member = make_user(db)
    token = add_member_by_api(api, org, member)
    [notification] = inbox(qapi, member, token)
    target = notification["id"] if whose == "someone else's" else str(uuid.uuid4())

    response = api.post(f"/notifications/{target}/read", headers=org.owner.headers)
    assert response.status_code == 404, response.text
    assert response.json()["error_code"] == "NOT_FOUND"
    assert inbox(qapi, member, token)[0]["read_at"] is None


def test_reading_needs_a_valid_id_and_a_user(api: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    malformed = api.post("/notifications/not-a-uuid/read", headers=user.headers)
    assert malformed.status_code == 422
    assert malformed.json()["error_code"] == "VALIDATION_ERROR"
    assert api.post(f"/notifications/{uuid.uuid4()}/read").status_code == 401
    assert api.post("/notifications/read-all").status_code == 401


def test_read_all_reads_every_unread_notification_of_mine_only(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    first, second = make_org(db), make_org(db)
    member, bystander = make_user(db), make_user(db)
    add_member_by_api(api, first, member)
    add_member_by_api(api, second, member)
    add_member_by_api(api, first, bystander)
    role = api.patch(
        first.path(f"/members/{member.id}"), json={"role": "manager"}, headers=first.owner.headers
    )
    assert role.status_code == 200
    assert len(inbox(qapi, member, role.headers["X-Consistency-Token"], unread=True)) == 3

    response = api.post("/notifications/read-all", headers=member.headers)
    assert response.status_code == 204, response.text
    token = response.headers["X-Consistency-Token"]
    assert inbox(qapi, member, token, unread=True) == []
    assert all(n["read_at"] for n in inbox(qapi, member, token))
    assert len(inbox(qapi, bystander, token, unread=True)) == 1
    for row in notification_rows(db, member.id):
        [created, read] = change_rows(db, row["id"])
        assert (created["op"], read["op"]) == ("created", "updated")

    again = api.post("/notifications/read-all", headers=member.headers)
    assert again.status_code == 204
    assert all(len(change_rows(db, row["id"])) == 2 for row in notification_rows(db, member.id))


def test_the_inbox_pages_newest_first(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    member = make_user(db)
    orgs = [make_org(db) for _ in range(3)]
    token = ""
    for org in orgs:
        token = add_member_by_api(api, org, member)
    response = qapi.get(
        "/notifications",
        params={"page": 2, "page_size": 2},
        headers={**member.headers, "X-Consistency-Token": token},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [n["org_id"] for n in body["data"]] == [str(orgs[0].id)]
    assert body["pagination"] == {
        "total": 3,
        "page": 2,
        "page_size": 2,
        "total_pages": 2,
        "has_next": False,
        "has_previous": True,
        "next_cursor": None,
    }


def test_the_inbox_refuses_bad_parameters_and_strangers(qapi: httpx.Client, db: Engine) -> None:
    user = make_user(db)
    drain(sessions(db))  # the read side knows the user
    for params in ({"unread": "perhaps"}, {"page": 0}, {"page_size": 1000}):
        response = qapi.get("/notifications", params=params, headers=user.headers)
        assert response.status_code == 422, params
        assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert qapi.get("/notifications").status_code == 401


def test_a_muted_kind_is_in_the_inbox_already_read(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    """`in_app: false` does not hide a notification: it arrives read, so it is listed
    but not among the unread ones, and its email still goes out."""
    org = make_org(db)
    member = make_user(db)
    settings = api.put(
        "/users/me/notification-settings",
        json={"member_added": {"in_app": False, "email": True}},
        headers=member.headers,
    )
    assert settings.status_code == 200, settings.text
    assert settings.json()["data"]["member_added"] == {"in_app": False, "email": True}
    token = add_member_by_api(api, org, member)

    [notification] = inbox(qapi, member, token)
    assert notification["kind"] == "member_added"
    assert notification["read_at"] == notification["created_at"]
    assert inbox(qapi, member, token, unread=True) == []
    assert [n["id"] for n in inbox(qapi, member, token, unread=False)] == [notification["id"]]
    [row] = notification_rows(db, member.id)
    assert (row["in_app"], row["email_status"]) == (False, "pending")
    assert row["read_at"] == row["created_at"]
    [created] = change_rows(db, row["id"])
    assert created["payload"]["new"]["read_at"] is not None

    # Reading it, or reading all, changes nothing.
    again = api.post(f"/notifications/{notification['id']}/read", headers=member.headers)
    assert again.status_code == 204
    assert api.post("/notifications/read-all", headers=member.headers).status_code == 204
    assert len(change_rows(db, row["id"])) == 1
    assert verify(sessions(db), "notifications", org_ids=[org.id]).ok


def test_unmuting_a_kind_makes_the_next_ones_arrive_unread(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    first, second = make_org(db), make_org(db)
    member = make_user(db)
    mute = {"member_added": {"in_app": False, "email": False}}
    assert api.put("/users/me/notification-settings", json=mute, headers=member.headers).is_success
    # Settings apply when a notification is made: wait until the first one is.
    assert len(inbox(qapi, member, add_member_by_api(api, first, member))) == 1
    unmute = {"member_added": {"in_app": True, "email": False}}
    assert api.put(
        "/users/me/notification-settings", json=unmute, headers=member.headers
    ).is_success
    token = add_member_by_api(api, second, member)

    by_org = {n["org_id"]: n for n in inbox(qapi, member, token)}
    assert set(by_org) == {str(first.id), str(second.id)}
    assert by_org[str(first.id)]["read_at"] is not None
    assert by_org[str(second.id)]["read_at"] is None
    assert [n["org_id"] for n in inbox(qapi, member, token, unread=True)] == [str(second.id)]
