"""Webhook deliveries end to end on the real services: a command, the change log, the
webhooks projection, the sender, a real HTTP receiver, and the delivery log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from shared.config import get_settings
from shared.webhooks import verify_signature
from tests.conftest import BackgroundProjector
from tests.factories import make_org
from tests.query_api.catalog.helpers import Reader, Writer
from tests.webhooks.receiver import receiver
from webhooks.sender import Sender


@pytest.fixture
def writer(api: httpx.Client) -> Writer:
    return Writer(api)


@pytest.fixture
def reader(qapi: httpx.Client, writer: Writer, projector_running: BackgroundProjector) -> Reader:
    return Reader(qapi, writer)


@pytest.fixture
def sender(db: Engine) -> Iterator[Sender]:
    sender = Sender(get_settings(), db, sessionmaker(bind=db))
    yield sender
    sender.client.close()


def _entry(start: str) -> dict[str, Any]:
    return {"start_at": start, "end_at": start.replace("T09", "T10"), "description": "spec"}


def test_an_entry_reaches_the_receiver_signed_and_the_log_shows_it(
    db: Engine, writer: Writer, reader: Reader, sender: Sender
) -> None:
    org = make_org(db)
    with receiver() as hook:
        created = writer.send(
            "POST", org.path("/webhooks"), org.owner, {"url": hook.url, "events": ["time_entry.*"]}
        )
        entry = writer.send(
            "POST", org.path("/time-entries"), org.owner, _entry("2026-03-02T09:00:00Z")
        )
        reader.data(org.path(f"/webhooks/{created['id']}/deliveries"), org.owner)  # projected
        sender.deliver_due(__import__("uuid").UUID(created["id"]))
        (got,) = hook.wait_for(1)
    body = got.json
    assert body["type"] == "time_entry.created"
    assert body["data"]["id"] == entry["id"]
    assert body["id"] == got.event_id
    timestamp = int(got.headers["evotrack-timestamp"])
    assert verify_signature(
        got.headers["evotrack-signature"],
        created["secret"],
        timestamp,
        got.body,
        now=int(time.time()),
    )
    log = reader.data(org.path(f"/webhooks/{created['id']}/deliveries"), org.owner)
    assert [(d["event"], d["status"], d["attempts"]) for d in log] == [
        ("time_entry.created", "delivered", 1)
    ]
