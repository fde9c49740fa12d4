"""GET …/webhooks: the organization's webhooks as its admins list them, never a secret."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.factories import add_member, make_org
from tests.query_api.catalog.helpers import Reader, Writer


def test_admins_list_webhooks_without_secrets(db: Engine, writer: Writer, reader: Reader) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    body = {"url": "http://127.0.0.1:9/a", "events": ["time_entry.*"], "description": "CRM"}
    first = writer.send("POST", org.path("/webhooks"), org.owner, body)
    second = writer.send(
        "POST", org.path("/webhooks"), org.owner, {"url": "http://127.0.0.1:9/b", "events": ["*"]}
    )
    writer.send("PATCH", org.path(f"/webhooks/{second['id']}"), org.owner, {"enabled": False}, 200)
    listed = reader.data(org.path("/webhooks"), org.owner)
    assert [item["id"] for item in listed] == [first["id"], second["id"]]
    assert listed[0] == {
        "id": first["id"],
        "url": "http://127.0.0.1:9/a",
        "events": ["time_entry.*"],
        "description": "CRM",
        "enabled": True,
        "disabled_reason": None,
        "last_delivery_at": None,
        "created_at": first["created_at"],
        "version": 1,
        "updated_at": first["updated_at"],
    }
    assert (listed[1]["enabled"], listed[1]["version"]) == (False, 2)
    assert all("secret" not in str(item) for item in listed)
    refused = reader.get(org.path("/webhooks"), member)
    assert refused.status_code == 403, refused.text
    writer.send("DELETE", org.path(f"/webhooks/{first['id']}"), org.owner, status=204)
    assert [item["id"] for item in reader.data(org.path("/webhooks"), org.owner)] == [second["id"]]
    other = make_org(db, owner=org.owner)
    writer.send("POST", other.path("/tags"), org.owner, {"name": "seen"})  # its token
    assert reader.data(other.path("/webhooks"), org.owner) == []
