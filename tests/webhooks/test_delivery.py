"""Webhook deliveries end to end on the real services: a command, the change log, the
webhooks projection, the sender, a real HTTP receiver, and the delivery log; and what
/metrics and /system/projections say of them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from projections.rebuild import rebuild, verify
from shared.config import get_settings
from shared.outbound import pinned
from shared.webhooks import EventDraft, verify_signature
from tests.conftest import LiveServer
from tests.factories import make_org
from tests.query_api.catalog.helpers import Reader, Writer
from tests.webhooks.receiver import receiver
from webhooks.sender import Sender
from webhooks.service import create_deliveries

T = TypeVar("T")


@pytest.fixture
def sender(db: Engine) -> Iterator[Sender]:
    sender = Sender(get_settings(), db, sessionmaker(bind=db))
    yield sender
    sender.client.close()


def eventually(read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """`read()` once `done` holds for it: the sender's change rows are projected after the
    command's consistency token, so the log is waited for, up to a minute."""
    deadline = time.monotonic() + 60
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r}")
        time.sleep(0.05)


def _entry(start: str) -> dict[str, Any]:
    return {"start_at": start, "end_at": start.replace("T09", "T10"), "description": "spec"}


def test_an_entry_reaches_the_receiver_signed_and_the_log_shows_it(
    db: Engine, writer: Writer, reader: Reader, sender: Sender
) -> None:
    org = make_org(db)
    with receiver() as hook:
        body = {"url": hook.url, "events": ["time_entry.*"]}
        created = writer.send("POST", org.path("/webhooks"), org.owner, body)
        deliveries = org.path(f"/webhooks/{created['id']}/deliveries")
        entry = writer.send(
            "POST", org.path("/time-entries"), org.owner, _entry("2026-03-02T09:00:00Z")
        )
        assert [d["status"] for d in reader.data(deliveries, org.owner)] == ["pending"]
        report = sender.deliver_due(uuid.UUID(created["id"]))
        assert (report.sent, report.delivered) == (1, 1)
        (got,) = hook.wait_for(1)
    event = got.json
    assert (event["type"], event["data"]["id"], event["id"]) == (
        "time_entry.created",
        entry["id"],
        got.event_id,
    )
    timestamp = int(got.headers["evotrack-timestamp"])
    signature = got.headers["evotrack-signature"]
    assert verify_signature(signature, created["secret"], timestamp, got.body, now=timestamp)
    log = eventually(
        lambda: reader.data(deliveries, org.owner),
        lambda log: log[0]["status"] == "delivered",
        "the delivery log",
    )
    assert [(d["event"], d["event_id"], d["attempts"]) for d in log] == [
        ("time_entry.created", event["id"], 1)
    ]
    listed = reader.data(org.path("/webhooks"), org.owner)
    assert listed[0]["last_delivery_at"] == log[0]["delivered_at"]


def _gauge(body: str, name: str) -> int:
    found = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    assert found, f"{name} is not in /metrics"
    return int(float(found.group(1)))


def test_metrics_and_the_system_status_count_pending_retrying_and_failed_deliveries(
    db: Engine, writer: Writer, reader: Reader, sender: Sender, query_server: LiveServer
) -> None:
    def metrics() -> str:
        return httpx.get(f"{query_server.url}/metrics").text

    org = make_org(db)
    with receiver(lambda _: (500, {})) as hook:
        body = {"url": hook.url, "events": ["tag.created"]}
        created = writer.send("POST", org.path("/webhooks"), org.owner, body)
        deliveries = org.path(f"/webhooks/{created['id']}/deliveries")
        before = metrics()
        writer.send("POST", org.path("/tags"), org.owner, {"name": "one"})
        writer.send("POST", org.path("/tags"), org.owner, {"name": "two"})
        reader.data(deliveries, org.owner)
        sender.deliver_due(uuid.UUID(created["id"]))  # the head fails; the second waits
        hook.wait_for(1)
        log = eventually(
            lambda: reader.data(deliveries, org.owner),
            lambda log: sorted(d["attempts"] for d in log) == [0, 1],
            "the failed attempt in the log",
        )
    failed = next(d for d in log if d["attempts"] == 1)
    assert (failed["status"], failed["last_status_code"]) == ("pending", 500)
    assert failed["last_error"] == "the receiver answered 500"
    assert failed["next_attempt_at"] is not None
    after = metrics()
    for status, more in (("pending", 2), ("retrying", 1), ("failed", 0)):
        name = f'evotrack_webhook_deliveries{{status="{status}"}}'
        assert _gauge(after, name) - _gauge(before, name) == more, status
    assert 'evotrack_projection_lag_changes{projection="webhooks"}' in after
    assert 'evotrack_queue_depth{queue="webhooks"}' in after
    system = reader.get("/system/projections", org.owner)
    assert system.status_code == 200, system.text
    assert "webhooks" in [p["name"] for p in system.json()["data"]]
    counts = system.json()["webhook_deliveries"]
    assert counts["pending"] >= 2
    assert counts["retrying"] >= 1


def test_the_sender_connects_to_the_address_it_checked_not_to_the_name_again(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    """DNS rebinding: a name checked on one address must not be looked up again when the
    request goes out. `hooks.test` resolves nowhere but through the injected resolver."""
    org = make_org(db)
    looked_up: list[str] = []

    def resolver(host: str) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    with receiver() as hook:
        body = {"url": hook.url, "events": ["tag.created"]}
        created = writer.send("POST", org.path("/webhooks"), org.owner, body)
        named = hook.url.replace("127.0.0.1", "hooks.test")
        with db.begin() as conn:
            conn.execute(
                text("UPDATE webhooks SET url = :url WHERE id = :id"),
                {"url": named, "id": created["id"]},
            )
        writer.send("POST", org.path("/tags"), org.owner, {"name": "pinned"})
        reader.data(org.path(f"/webhooks/{created['id']}/deliveries"), org.owner)
        sender = Sender(get_settings(), db, sessionmaker(bind=db), resolver=resolver)
        try:
            assert sender.deliver_due(uuid.UUID(created["id"])).delivered == 1
        finally:
            sender.client.close()
        (got,) = hook.wait_for(1)
    assert looked_up == ["hooks.test"]
    assert got.headers["host"] == named.split("/")[2]


def test_a_pinned_request_keeps_the_name_for_the_host_header_and_tls() -> None:
    https = pinned("https://hooks.example.com/in?x=1", ["93.184.216.34"])
    assert https.url == "https://93.184.216.34/in?x=1"
    assert https.headers == {"Host": "hooks.example.com"}
    assert https.extensions == {"sni_hostname": "hooks.example.com"}
    six = pinned("http://hooks.example.com:8080/in", ["2606:2800:220:1::1"])
    assert (six.url, six.headers, six.extensions) == (
        "http://[2606:2800:220:1::1]:8080/in",
        {"Host": "hooks.example.com:8080"},
        {},
    )
    literal = pinned("https://93.184.216.34/in", ["10.0.0.1"])
    assert (literal.url, literal.headers) == ("https://93.184.216.34/in", {})


def test_a_rebuild_of_the_webhooks_projection_restores_the_log_and_sends_nothing_again(
    db: Engine, writer: Writer, reader: Reader, sender: Sender
) -> None:
    org = make_org(db)
    with receiver() as hook:
        body = {"url": hook.url, "events": ["tag.*"]}
        created = writer.send("POST", org.path("/webhooks"), org.owner, body)
        deliveries = org.path(f"/webhooks/{created['id']}/deliveries")
        for name in ("one", "two", "three"):
            writer.send("POST", org.path("/tags"), org.owner, {"name": name})
        reader.data(deliveries, org.owner)
        assert sender.deliver_due(uuid.UUID(created["id"])).delivered == 3
        before = eventually(
            lambda: reader.data(deliveries, org.owner),
            lambda log: [d["status"] for d in log] == ["delivered"] * 3,
            "the delivered log",
        )
        sessions = sessionmaker(bind=db)
        rebuild(sessions, "webhooks")
        assert verify(sessions, "webhooks", org_ids=[org.id]).diffs == []
        assert reader.data(deliveries, org.owner) == before
        with db.connect() as conn:
            made = conn.execute(
                text("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :id"),
                {"id": created["id"]},
            ).scalar_one()
        assert made == 3
        assert sender.deliver_due(uuid.UUID(created["id"])).sent == 0
        assert len(hook.received) == 3


def test_a_batch_of_more_deliveries_than_one_statement_carries_is_made_whole(
    db: Engine, writer: Writer
) -> None:
    """9,000 deliveries of 8 values each pass PostgreSQL's 65,535 parameters of a statement:
    a bulk import seen by a few webhooks. They are made in chunks, all of them, once."""
    org = make_org(db)
    for n in range(3):
        body = {"url": f"http://127.0.0.1:9/{n}", "events": ["tag.*"]}
        writer.send("POST", org.path("/webhooks"), org.owner, body)
    now = datetime.now(UTC)
    events = [
        EventDraft(
            id=uuid.uuid4(), org_id=org.id, type="tag.created", created_at=now, data={"n": n}
        )
        for n in range(3000)
    ]
    with Session(db) as session, session.begin():
        assert len(create_deliveries(session, events)) == 9000
        assert create_deliveries(session, events) == []  # made once
        session.rollback()
