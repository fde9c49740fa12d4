"""Webhook subscriptions (API.md, "Webhooks"): admins subscribe URLs to events, change and
delete them and rotate their secrets; URLs follow the outbound rules against SSRF."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from shared.config import Settings
from shared.outbound import UnsafeURLError, check_url
from tests.factories import OrgHandle, add_member, change_rows, make_org

RECEIVER = "http://127.0.0.1:9/hooks"  # loopback: allowed over http outside production


def create(api: httpx.Client, org: OrgHandle, status: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("url", RECEIVER)
    body.setdefault("events", ["time_entry.*"])
    response = api.post(org.path("/webhooks"), json=body, headers=org.owner.headers)
    assert response.status_code == status, response.text
    data: dict[str, Any] = response.json()["data"] if status < 400 else response.json()
    return data


def stored(db: Engine, webhook_id: str) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(text("SELECT * FROM webhooks WHERE id = :id"), {"id": webhook_id})
        return dict(row.mappings().one())


def test_a_webhook_is_created_with_a_secret_shown_once(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    data = create(api, org, events=["time_entry.*", "project.deleted", "time_entry.*"])
    assert data["events"] == ["project.deleted", "time_entry.*"]
    assert data["secret"].startswith("whsec_")
    assert len(data["secret"]) > 40
    assert (data["enabled"], data["disabled_reason"], data["version"]) == (True, None, 1)
    assert stored(db, data["id"])["secret"] == data["secret"]
    chosen = create(api, org, secret="s" * 20)
    assert chosen["secret"] == "s" * 20
    # The change row the read side projects carries no secret.
    (change,) = change_rows(db, uuid.UUID(data["id"]))
    assert "secret" not in str(change["payload"])
    assert change["payload"]["new"]["url"] == RECEIVER


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["time_entry.exploded"]}, "events"),
        ({"events": ["nonsense"]}, "events"),
        ({"events": ["*.created"], "secret": "short"}, "secret"),
        ({"url": "ftp://127.0.0.1/x"}, "url"),
        ({"url": "http://example.com/hooks"}, "url"),  # http beyond this machine
        ({"url": "https://user:pw@127.0.0.1/x"}, "url"),
        ({"url": "https://does-not-resolve.invalid/x"}, "url"),
        ({"url": "https://127.0.0.1/" + "x" * 2048}, "url"),
    ],
)
def test_bad_bodies_are_422s_naming_the_field(
    api: httpx.Client, db: Engine, body: dict[str, Any], field: str
) -> None:
    org = make_org(db)
    refused = create(api, org, status=422, **body)
    assert refused["error_code"] == "VALIDATION_ERROR"
    assert field in {detail["field"] for detail in refused["details"]}, refused


def test_patterns_take_a_star_on_either_side(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    assert create(api, org, events=["*", "*.deleted", "tag.*", "ping"])["events"] == [
        "*",
        "*.deleted",
        "ping",
        "tag.*",
    ]


def test_only_admins_manage_webhooks(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    manager = add_member(db, org, "manager")
    response = api.post(
        org.path("/webhooks"),
        json={"url": RECEIVER, "events": ["*"]},
        headers=manager.headers,
    )
    assert response.status_code == 403, response.text
    webhook = create(api, org)
    patched = api.patch(
        org.path(f"/webhooks/{webhook['id']}"), json={"enabled": False}, headers=manager.headers
    )
    assert patched.status_code == 403, patched.text


def test_update_delete_and_unknown_webhooks(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    webhook = create(api, org)
    path = org.path(f"/webhooks/{webhook['id']}")
    body = {"events": ["tag.created"], "enabled": False, "description": "for the CRM"}
    response = api.patch(path, json=body, headers=org.owner.headers)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["events"], data["enabled"], data["description"]) == (
        ["tag.created"],
        False,
        "for the CRM",
    )
    assert data["version"] == 2
    assert "secret" not in data
    null = api.patch(path, json={"url": None}, headers=org.owner.headers)
    assert null.status_code == 422, null.text
    bad = api.patch(path, json={"url": "http://example.com/x"}, headers=org.owner.headers)
    assert bad.status_code == 422, bad.text
    assert api.delete(path, headers=org.owner.headers).status_code == 204
    assert stored(db, webhook["id"])["deleted_at"] is not None
    for method in ("PATCH", "DELETE"):
        gone = api.request(method, path, json={}, headers=org.owner.headers)
        assert gone.status_code == 404, gone.text
    other = make_org(db)
    elsewhere = api.delete(other.path(f"/webhooks/{webhook['id']}"), headers=other.owner.headers)
    assert elsewhere.status_code == 404


def test_a_rotation_keeps_the_old_secret_for_a_day(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    webhook = create(api, org)
    before = datetime.now(UTC)
    response = api.post(
        org.path(f"/webhooks/{webhook['id']}/rotate-secret"), headers=org.owner.headers
    )
    assert response.status_code == 200, response.text
    rotated = response.json()["data"]
    row = stored(db, webhook["id"])
    assert rotated["secret"] != webhook["secret"]
    assert row["secret"] == rotated["secret"]
    assert row["previous_secret"] == webhook["secret"]
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(hours=24)
    assert row["previous_secret_expires_at"] == expires


# --- The outbound rules, with the resolver injected --------------------------------------------


def _resolver(addresses: dict[str, list[str]]) -> Any:
    def resolve(host: str) -> list[str]:
        if host not in addresses:
            raise UnsafeURLError(f"the host '{host}' does not resolve")
        return addresses[host]

    return resolve


PRODUCTION = Settings(environment="production", secret_key="x" * 40)
DNS = _resolver(
    {
        "hooks.example.com": ["93.184.216.34"],
        "internal.example.com": ["10.1.2.3"],
        "metadata.example.com": ["169.254.169.254"],
        "mixed.example.com": ["93.184.216.34", "192.168.1.5"],
        "localhost": ["127.0.0.1", "::1"],
        "v6.example.com": ["fd00::1"],
    }
)


@pytest.mark.parametrize(
    "url",
    [
        "https://internal.example.com/x",
        "https://metadata.example.com/latest",
        "https://mixed.example.com/x",
        "https://localhost/x",
        "http://localhost/x",
        "https://v6.example.com/x",
        "http://hooks.example.com/x",
    ],
)
def test_production_refuses_what_is_not_a_public_https_address(url: str) -> None:
    with pytest.raises(UnsafeURLError):
        check_url(url, PRODUCTION, DNS)


def test_production_takes_public_https_and_the_allowed_hosts() -> None:
    assert check_url("https://hooks.example.com/x", PRODUCTION, DNS)
    allowed = PRODUCTION.model_copy(update={"webhook_allowed_hosts": ["internal.example.com"]})
    assert check_url("https://internal.example.com/x", allowed, DNS)
    with pytest.raises(UnsafeURLError):
        check_url("http://internal.example.com/x", allowed, DNS)  # still https only


def test_outside_production_http_reaches_this_machine_only() -> None:
    test = PRODUCTION.model_copy(update={"environment": "test"})
    assert check_url("http://localhost:8080/x", test, DNS)
    assert check_url("https://internal.example.com/x", test, DNS)
    with pytest.raises(UnsafeURLError):
        check_url("http://hooks.example.com/x", test, DNS)
