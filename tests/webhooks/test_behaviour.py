"""How webhook deliveries behave, seen from real receivers (API.md, "Webhooks"): signatures
and secret rotation, retries with backoff on a fake clock, the 3-day give-up, redirects,
the outbound rules at send time, ping and redeliver, order, and what events carry.

The sender is driven by the test (`deliver_due`), its clock injected; the projector runs
in the background. After the sender acted, the log is read with `settle()`: a consistency
token past every transaction finished so far, which the sender's own writes are among.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings, get_settings
from shared.consistency import current_consistency_xid, encode_consistency_token
from shared.webhooks import verify_signature
from tests.factories import OrgHandle, UserHandle, add_member, make_org, make_user
from tests.query_api.catalog.helpers import Reader, Writer
from tests.webhooks.receiver import Received, Receiver, receiver
from webhooks.sender import Sender

Answer = Callable[[Received], tuple[int, dict[str, str]]]
MakeSender = Callable[..., Sender]

# API.md's schedule, kept here so that the sender's own table is what is tested: after
# the n-th failed attempt the next waits the n-th of these (then every 12 h), for 3 days.
SCHEDULE_SECONDS = (10, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 12 * 3600)
GIVE_UP_AFTER = timedelta(days=3)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=SCHEDULE_SECONDS[min(attempts, len(SCHEDULE_SECONDS)) - 1])


@pytest.fixture
def senders(db: Engine) -> Iterator[MakeSender]:
    """Senders on the test database (settings, then `Sender`'s keywords); their clients
    are closed at the end."""
    made: list[Sender] = []

    def make(settings: Settings | None = None, **options: Any) -> Sender:
        sender = Sender(settings or get_settings(), db, sessionmaker(bind=db), **options)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.client.close()


class FakeClock:
    """The sender's time: it stands still until the test moves it. Deliveries are due
    from the database's now: make the clock once they exist, or `catch_up`."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def catch_up(self) -> None:
        """Come to the real time if behind it: deliveries made since are then due."""
        self.now = max(self.now, datetime.now(UTC))


def answering(status: int, headers: dict[str, str] | None = None) -> Answer:
    return lambda _: (status, headers or {})


def settled(db: Engine) -> str:
    """A consistency token past every transaction finished so far: the sender's writes,
    which no command's token covers, included."""
    with Session(db) as session:
        return encode_consistency_token(current_consistency_xid(session))


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


@dataclass
class Hooked:
    """An organization with one webhook to a receiver, driven through the APIs."""

    db: Engine
    org: OrgHandle
    writer: Writer
    reader: Reader
    receiver: Receiver
    webhook: dict[str, Any]

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.webhook["id"])

    def path(self, suffix: str = "") -> str:
        return self.org.path(f"/webhooks/{self.id}{suffix}")

    def send(self, method: str, suffix: str, body: Any = None, status: int = 201) -> Any:
        """A command of the owner's, on a path of the organization."""
        return self.writer.send(method, self.org.path(suffix), self.org.owner, body, status)

    def read(self, path: str, user: UserHandle | None = None, **params: Any) -> Any:
        return self.reader.data(path, user or self.org.owner, **params)

    def log(self) -> list[dict[str, Any]]:
        """The delivery log, oldest first, once it shows the last command's deliveries."""
        newest_first = self.read(self.path("/deliveries"), page_size=100)
        return list(reversed(newest_first))

    def settle(self) -> None:
        """Make the next reads wait for everything finished so far (the sender's writes)."""
        self.writer.token = settled(self.db)

    def settled_log(self) -> list[dict[str, Any]]:
        self.settle()
        return self.log()

    def listed(self) -> dict[str, Any]:
        """The webhook as GET …/webhooks shows it now."""
        self.settle()
        (shown,) = [w for w in self.read(self.org.path("/webhooks")) if w["id"] == str(self.id)]
        return dict(shown)

    def deliver(self, sender: Sender, clock: FakeClock | None = None) -> list[Received]:
        """Send the pending deliveries (once the last command's are made) and return what
        arrived; each must be delivered."""
        before = len(self.receiver.received)
        pending = [d for d in self.log() if d["status"] == "pending"]
        if clock is not None:
            clock.catch_up()
        report = sender.deliver_due(self.id)
        assert (report.sent, report.delivered) == (len(pending), len(pending)), report
        return self.receiver.wait_for(before + len(pending))[before:]


def subscribe(
    db: Engine,
    writer: Writer,
    reader: Reader,
    hook: Receiver,
    events: list[str],
    org: OrgHandle | None = None,
) -> Hooked:
    org = org or make_org(db)
    body = {"url": hook.url, "events": events}
    webhook = writer.send("POST", org.path("/webhooks"), org.owner, body)
    return Hooked(db, org, writer, reader, hook, webhook)


def stored_delivery(db: Engine, delivery_id: str) -> tuple[str, datetime | None]:
    """A delivery's status and next attempt, from its row (the sender's queue)."""
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT status, next_attempt_at FROM webhook_deliveries WHERE id = :id"),
            {"id": delivery_id},
        ).one()
    return str(row.status), row.next_attempt_at


def new_tag(h: Hooked, name: str) -> str:
    return str(h.send("POST", "/tags", {"name": name})["id"])


# --- 1. Signatures -----------------------------------------------------------------------


def assert_signed(got: Received, secrets: list[str], values: int, clock: FakeClock) -> None:
    """The headers match the body, and the signature has `values` v1= values, one of
    which each secret verifies."""
    body, headers = got.json, got.headers
    assert (headers["evotrack-event-id"], headers["evotrack-event-type"]) == (
        body["id"],
        body["type"],
    )
    timestamp = int(headers["evotrack-timestamp"])
    assert timestamp == int(clock.now.timestamp())
    signature = headers["evotrack-signature"]
    assert [part.split("=", 1)[0] for part in signature.split(",")] == ["v1"] * values
    now = int(clock.now.timestamp())
    for secret in secrets:
        assert verify_signature(signature, secret, timestamp, got.body, now=now), secret
    assert not verify_signature(signature, "whsec_someone-else", timestamp, got.body, now=now)


def test_deliveries_are_signed_and_carry_both_secrets_after_a_rotation(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver() as hook:
        h = subscribe(db, writer, reader, hook, ["tag.*"])
        old = h.webhook["secret"]
        new_tag(h, "signed")
        clock = FakeClock()
        sender = senders(clock=clock)
        (got,) = h.deliver(sender, clock)
        assert_signed(got, [old], 1, clock)
        (logged,) = h.settled_log()
        assert got.headers["evotrack-delivery-id"] == logged["id"]
        assert got.event_id == logged["event_id"]

        new = h.send("POST", f"/webhooks/{h.id}/rotate-secret", status=200)["secret"]
        new_tag(h, "rotated")
        (rotated,) = h.deliver(sender, clock)
        assert_signed(rotated, [old, new], 2, clock)

        clock.advance(timedelta(hours=25))  # the old secret's day is over
        new_tag(h, "later")
        (later,) = h.deliver(sender)
        assert_signed(later, [new], 1, clock)
        stamp = int(later.headers["evotrack-timestamp"])
        assert not verify_signature(
            later.headers["evotrack-signature"], old, stamp, later.body, now=stamp
        )


# --- 2. A receiver down, then back -------------------------------------------------------


def fail_through_backoff(h: Hooked, sender: Sender, clock: FakeClock, rounds: int) -> None:
    """Attempt the head `rounds` times, each once its backoff has passed (not before),
    checking the log's next_attempt_at after each failure."""
    for attempts in range(1, rounds + 1):
        if attempts > 1:
            clock.advance(backoff(attempts - 1) - timedelta(seconds=1))
            assert sender.deliver_due(h.id).sent == 0, "sent before its backoff passed"
            clock.advance(timedelta(seconds=1))
        assert sender.deliver_due(h.id).sent == 1
        head = h.settled_log()[0]
        assert (head["status"], head["attempts"]) == ("pending", attempts)
        assert instant(head["next_attempt_at"]) == clock.now + backoff(attempts)


def assert_all_arrive_in_order(
    h: Hooked, sender: Sender, clock: FakeClock, received_before: int
) -> list[Received]:
    """Once back, every pending delivery arrives, in change order, with its event id."""
    log = h.settled_log()
    clock.advance(backoff(log[0]["attempts"]))
    report = sender.deliver_due(h.id)
    assert (report.sent, report.delivered) == (len(log), len(log))
    arrived = h.receiver.wait_for(received_before + len(log))[received_before:]
    assert [got.event_id for got in arrived] == [d["event_id"] for d in log]
    after = h.settled_log()
    assert [d["status"] for d in after] == ["delivered"] * len(log)
    return arrived


def three_entries(h: Hooked) -> list[str]:
    """Three finished entries, in this order; their ids."""
    return [
        h.send(
            "POST", "/time-entries", {"start_at": f"{day}T09:00:00Z", "end_at": f"{day}T10:00:00Z"}
        )["id"]
        for day in ("2026-03-02", "2026-03-03", "2026-03-04")
    ]


def test_a_receiver_answering_503_gets_everything_in_order_once_back(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver(answering(503)) as hook:
        h = subscribe(db, writer, reader, hook, ["time_entry.*"])
        entries = three_entries(h)
        assert len(h.log()) == 3
        clock = FakeClock()
        sender = senders(clock=clock)
        fail_through_backoff(h, sender, clock, rounds=4)
        log = h.settled_log()
        assert {got.event_id for got in hook.received} == {log[0]["event_id"]}
        assert (log[0]["last_status_code"], log[0]["last_error"]) == (
            503,
            "the receiver answered 503",
        )
        assert [d["attempts"] for d in log[1:]] == [0, 0]
        hook.answer = answering(204)
        arrived = assert_all_arrive_in_order(h, sender, clock, received_before=4)
    assert [got.json["data"]["id"] for got in arrived] == entries
    assert arrived[0].event_id == hook.received[0].event_id


def test_a_closed_port_is_retried_and_the_receiver_back_there_gets_everything(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver() as gone:
        url = gone.url
    port = urlsplit(url).port or 0
    h = subscribe(db, writer, reader, Receiver(url=url), ["time_entry.*"])
    entries = three_entries(h)
    logged = [d["event_id"] for d in h.log()]
    clock = FakeClock()
    sender = senders(clock=clock)
    fail_through_backoff(h, sender, clock, rounds=3)
    head = h.settled_log()[0]
    assert head["last_status_code"] is None
    assert head["last_error"].startswith("could not connect"), head
    with receiver(port=port) as back:
        h.receiver = back
        arrived = assert_all_arrive_in_order(h, sender, clock, received_before=0)
    assert [got.event_id for got in arrived] == logged
    assert [got.json["data"]["id"] for got in arrived] == entries


# --- 3. Three days of 500 ----------------------------------------------------------------


def fail_until_given_up(h: Hooked, sender: Sender, clock: FakeClock, delivery_id: str) -> int:
    """Attempt the head at each backoff until it fails for good; return the attempts."""
    first = clock.now
    attempts = 0
    status, next_attempt_at = stored_delivery(h.db, delivery_id)
    while status == "pending":
        assert attempts < 40, f"still pending after {attempts} attempts over {clock.now - first}"
        if attempts:
            clock.advance(backoff(attempts))
        assert sender.deliver_due(h.id).sent == 1
        attempts += 1
        status, next_attempt_at = stored_delivery(h.db, delivery_id)
        if status == "pending":
            assert next_attempt_at == clock.now + backoff(attempts), attempts
    elapsed = clock.now - first
    assert elapsed <= GIVE_UP_AFTER < elapsed + backoff(attempts), elapsed
    return attempts


def disabled_notices(h: Hooked, user: UserHandle) -> list[dict[str, Any]]:
    inbox = h.read("/notifications", user)
    return [n for n in inbox if n["kind"] == "webhook_disabled"]


def test_three_days_of_500_fail_the_delivery_disable_the_webhook_and_tell_admins(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    org = make_org(db)
    admin, member = add_member(db, org, "admin"), add_member(db, org, "member")
    with receiver(answering(500)) as hook:
        h = subscribe(db, writer, reader, hook, ["tag.*"], org=org)
        new_tag(h, "head")
        new_tag(h, "behind")
        head, behind = h.log()
        clock = FakeClock()
        sender = senders(clock=clock)
        attempts = fail_until_given_up(h, sender, clock, head["id"])
        assert len(hook.received) == attempts
        assert {got.event_id for got in hook.received} == {head["event_id"]}

        log = h.settled_log()
        assert [(d["status"], d["next_attempt_at"]) for d in log] == [
            ("failed", None),
            ("pending", behind["next_attempt_at"]),
        ]
        assert log[0]["last_status_code"] == 500
        listed = h.listed()
        assert listed["enabled"] is False
        assert "3 days" in listed["disabled_reason"]
        assert "500" in listed["disabled_reason"]
        for user in (org.owner, admin):
            (notice,) = disabled_notices(h, user)
            assert notice["data"]["webhook_id"] == str(h.id)
        assert disabled_notices(h, member) == []

        hook.answer = answering(204)
        clock.advance(timedelta(days=1))
        assert sender.deliver_due(h.id).sent == 0, "sent while disabled"
        assert len(hook.received) == attempts

        h.send("PATCH", f"/webhooks/{h.id}", {"enabled": True}, status=200)
        listed = h.listed()
        assert (listed["enabled"], listed["disabled_reason"]) == (True, None)
        assert sender.deliver_due(h.id).delivered == 1
        assert hook.received[-1].event_id == behind["event_id"]
        new_tag(h, "after")
        (after,) = h.deliver(sender)
        assert after.json["type"] == "tag.created"


# --- 4. Redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender, status: int
) -> None:
    with receiver() as elsewhere, receiver() as hook:
        hook.answer = answering(status, {"Location": elsewhere.url})
        h = subscribe(db, writer, reader, hook, ["tag.*"])
        new_tag(h, "moved")
        assert len(h.log()) == 1
        report = senders().deliver_due(h.id)
        assert (report.sent, report.delivered) == (1, 0)
        (got,) = hook.wait_for(1)
        (logged,) = h.settled_log()
        assert elsewhere.received == []
    assert got.event_id == logged["event_id"]
    assert (logged["status"], logged["last_status_code"]) == ("pending", status)
    assert logged["last_error"] == f"redirect to {elsewhere.url} not followed"


# --- 5. The outbound rules at send time --------------------------------------------------


class PlainHTTPTransport(httpx.HTTPTransport):
    """Sends an https:// request over plain HTTP to the same socket: the receivers here
    have no certificate, and the rules under test are about the URL."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http")
        return super().handle_request(request)


def test_production_sends_nothing_to_a_host_now_resolving_to_a_private_address(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    production = get_settings().model_copy(update={"environment": "production"})
    with receiver() as hook:
        https = Receiver(url=hook.url.replace("http://", "https://"))
        h = subscribe(db, writer, reader, https, ["tag.*"])  # fine when saved (test)
        new_tag(h, "rebound")
        assert len(h.log()) == 1
        clock = FakeClock()

        def sender(settings: Settings) -> Sender:
            client = httpx.Client(transport=PlainHTTPTransport(), follow_redirects=False)
            return senders(settings, clock=clock, client=client, resolver=lambda _: ["10.0.0.7"])

        assert sender(production).deliver_due(h.id).delivered == 0
        (logged,) = h.settled_log()
        assert hook.received == []
        assert logged["last_error"].startswith("not sent: the URL '127.0.0.1' resolves to a")
        assert "WEBHOOK_ALLOWED_HOSTS" in logged["last_error"]
        assert logged["last_status_code"] is None

        allowed = production.model_copy(update={"webhook_allowed_hosts": ["127.0.0.1"]})
        clock.advance(backoff(1))
        assert sender(allowed).deliver_due(h.id).delivered == 1
        (got,) = hook.wait_for(1)
    assert got.event_id == logged["event_id"]


def test_production_refuses_to_save_a_private_url(
    api: httpx.Client, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command API's check when a URL is saved (the live server runs in this process,
    so its settings can be swapped for production's)."""
    production = get_settings().model_copy(update={"environment": "production"})
    settings = {"now": production}
    monkeypatch.setattr(
        "command_api.modules.webhooks.service.get_settings", lambda: settings["now"]
    )
    org = make_org(db)

    def create(url: str) -> httpx.Response:
        body = {"url": url, "events": ["*"]}
        return api.post(org.path("/webhooks"), json=body, headers=org.owner.headers)

    for url in ("https://127.0.0.1:9/hook", "https://localhost:9/hook", "http://127.0.0.1:9/x"):
        refused = create(url)
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"][0]["field"] == "url"
    assert "WEBHOOK_ALLOWED_HOSTS" in create("https://127.0.0.1:9/hook").text
    settings["now"] = production.model_copy(update={"webhook_allowed_hosts": ["127.0.0.1"]})
    assert create("https://127.0.0.1:9/hook").status_code == 201
    assert create("http://127.0.0.1:9/hook").status_code == 422  # still https only


# --- 6. Ping and redeliver ---------------------------------------------------------------


def test_a_ping_reaches_the_receiver_whatever_the_webhook_subscribed_to(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver() as hook:
        h = subscribe(db, writer, reader, hook, ["tag.deleted"])
        accepted = h.send("POST", f"/webhooks/{h.id}/ping", status=202)
        (logged,) = h.log()
        assert (logged["id"], logged["event"]) == (accepted["delivery_id"], "ping")
        (got,) = h.deliver(senders())
    assert got.headers["evotrack-delivery-id"] == accepted["delivery_id"]
    assert (got.json["type"], got.json["data"]) == ("ping", {"webhook_id": str(h.id)})
    assert got.event_id == got.json["id"] == logged["event_id"]


def test_a_redelivery_sends_the_same_event_again_freshly_signed(
    api: httpx.Client, db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver() as hook:
        h = subscribe(db, writer, reader, hook, ["tag.*"])
        new_tag(h, "again")
        clock = FakeClock()
        sender = senders(clock=clock)
        (first,) = h.deliver(sender, clock)
        (logged,) = h.settled_log()
        assert logged["status"] == "delivered"
        redeliver = f"/webhooks/{h.id}/deliveries/{logged['id']}/redeliver"
        assert h.send("POST", redeliver, status=202) == {"delivery_id": logged["id"]}
        assert [(d["status"], d["attempts"]) for d in h.log()] == [("pending", 0)]
        clock.advance(timedelta(minutes=10))
        (again,) = h.deliver(sender, clock)
    assert (again.event_id, again.body) == (first.event_id, first.body)
    assert again.headers["evotrack-delivery-id"] == logged["id"]
    stamps = [int(got.headers["evotrack-timestamp"]) for got in (first, again)]
    assert stamps[1] - stamps[0] >= 600
    assert first.headers["evotrack-signature"] != again.headers["evotrack-signature"]
    for got, stamp in zip((first, again), stamps, strict=True):
        signature = got.headers["evotrack-signature"]
        assert verify_signature(signature, h.webhook["secret"], stamp, got.body, now=stamp)
    assert [(d["status"], d["attempts"]) for d in h.settled_log()] == [("delivered", 1)]
    other = subscribe(db, writer, reader, hook, ["tag.*"], org=h.org)
    for webhook_id, delivery_id in ((h.id, uuid.uuid4()), (other.id, logged["id"])):
        path = h.org.path(f"/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")
        unknown = api.post(path, headers=h.org.owner.headers)
        assert unknown.status_code == 404, unknown.text


# --- 7. Order ----------------------------------------------------------------------------


def test_nothing_passes_a_failing_head_and_all_follow_it_in_order(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    healed = threading.Event()
    with receiver() as hook:
        h = subscribe(db, writer, reader, hook, ["tag.*"])
        tag = new_tag(h, "first")
        (head,) = h.log()

        def answer(got: Received) -> tuple[int, dict[str, str]]:
            # Only the head fails: a sender that skipped it would deliver the others.
            return (204 if healed.is_set() or got.event_id != head["event_id"] else 500), {}

        hook.answer = answer
        clock = FakeClock()
        sender = senders(clock=clock)
        for attempts in (1, 2, 3):  # then the head's next attempt is 5 min away
            clock.advance(backoff(attempts - 1) if attempts > 1 else timedelta(0))
            assert sender.deliver_due(h.id).sent == 1
        h.send("PATCH", f"/tags/{tag}", {"name": "renamed"}, status=200)
        new_tag(h, "second")
        h.send("DELETE", f"/tags/{tag}", status=204)
        head, *behind = h.log()
        clock.catch_up()
        assert all(instant(d["next_attempt_at"]) <= clock.now for d in behind)
        assert instant(head["next_attempt_at"]) > clock.now
        assert sender.deliver_due(h.id).sent == 0, "sent behind a head not yet due"
        clock.advance(backoff(3))
        assert sender.deliver_due(h.id).sent == 1, "sent more than the head"
        assert {got.event_id for got in hook.received} == {head["event_id"]}
        assert [d["status"] for d in h.settled_log()] == ["pending"] * 4
        healed.set()
        arrived = assert_all_arrive_in_order(h, sender, clock, received_before=4)
    assert [got.json["type"] for got in arrived] == [
        "tag.created",
        "tag.updated",
        "tag.created",
        "tag.deleted",
    ]


# --- 8. What events carry ----------------------------------------------------------------


def normal(value: Any) -> Any:
    """A JSON value with its instants as datetimes: the formats may differ, not the time."""
    if isinstance(value, dict):
        return {key: normal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normal(item) for item in value]
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    return value


def assert_as_shown(data: dict[str, Any], shown: dict[str, Any], *, but: str = "") -> None:
    """`data` is the entity as the query API shows it to an admin: every key of it is
    shown, with the same value (`but` one that moves with time)."""
    assert set(data) <= set(shown), f"not shown: {set(data) - set(shown)}"
    keys = sorted(set(data) - {but})
    assert {k: normal(data[k]) for k in keys} == {k: normal(shown[k]) for k in keys}


def shown(h: Hooked, path: str, item_id: str, key: str = "id") -> dict[str, Any]:
    found = [item for item in h.read(path, page_size=100) if item[key] == item_id]
    assert len(found) == 1, f"{item_id} in {path}: {found}"
    return dict(found[0])


def one_event(h: Hooked, sender: Sender, event: str) -> dict[str, Any]:
    """The data of the one event the last command made, which must be `event`."""
    (got,) = h.deliver(sender)
    assert got.json["type"] == event
    data: dict[str, Any] = got.json["data"]
    return data


def test_catalog_events_carry_the_entity_as_the_query_api_shows_it(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver() as hook:
        h = subscribe(db, writer, reader, hook, ["*"])
        sender = senders()
        client = h.send("POST", "/clients", {"name": "Globex"})["id"]
        data = one_event(h, sender, "client.created")
        assert_as_shown(data, shown(h, h.org.path("/clients"), client))
        body = {"name": "Site", "client_id": client, "color": "#3366FF", "hourly_rate": 9000}
        project = h.send("POST", "/projects", {**body, "budget_seconds": 36000})["id"]
        data = one_event(h, sender, "project.created")
        assert_as_shown(data, h.read(h.org.path(f"/projects/{project}")))
        h.send("PATCH", f"/projects/{project}", {"name": "Website", "billable": False}, 200)
        data = one_event(h, sender, "project.updated")
        assert data["name"] == "Website"
        assert_as_shown(data, h.read(h.org.path(f"/projects/{project}")))
        task = h.send("POST", f"/projects/{project}/tasks", {"name": "Design"})["id"]
        data = one_event(h, sender, "task.created")
        assert_as_shown(data, shown(h, h.org.path(f"/projects/{project}/tasks"), task))
        tag = new_tag(h, "meeting")
        assert_as_shown(one_event(h, sender, "tag.created"), shown(h, h.org.path("/tags"), tag))
        for path, event, item in (
            (f"/projects/{project}/tasks/{task}", "task.deleted", task),
            (f"/tags/{tag}", "tag.deleted", tag),
            (f"/projects/{project}", "project.deleted", project),
            (f"/clients/{client}", "client.deleted", client),
        ):
            h.send("DELETE", path, status=204)
            assert one_event(h, sender, event) == {"id": item}


def test_member_events_carry_the_member_as_the_query_api_shows_it(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver() as hook:
        h = subscribe(db, writer, reader, hook, ["member.*"])
        sender = senders()
        user = make_user(db, full_name="Ada")
        h.send("POST", "/members", {"email": user.email, "role": "member", "hourly_rate": 5000})
        members = h.org.path("/members")
        data = one_event(h, sender, "member.added")
        assert_as_shown(data, shown(h, members, str(user.id), key="user_id"))
        h.send("PATCH", f"/members/{user.id}", {"role": "manager"}, status=200)
        data = one_event(h, sender, "member.updated")
        assert data["role"] == "manager"
        assert_as_shown(data, shown(h, members, str(user.id), key="user_id"))
        h.send("DELETE", f"/members/{user.id}", status=204)
        assert one_event(h, sender, "member.removed") == {"user_id": str(user.id)}


def entry_shown(h: Hooked, entry: str) -> dict[str, Any]:
    return shown(h, h.org.path("/time-entries"), entry)


def test_entry_and_timer_events_carry_the_entry_as_the_query_api_shows_it(
    db: Engine, writer: Writer, reader: Reader, senders: MakeSender
) -> None:
    with receiver() as hook:
        h = subscribe(db, writer, reader, hook, ["time_entry.*", "timer.*"])
        project = h.send("POST", "/projects", {"name": "Site", "hourly_rate": 6000})["id"]
        tag = h.send("POST", "/tags", {"name": "deep"})["id"]
        sender = senders()
        body = {
            "start_at": "2026-03-02T09:00:00Z",
            "end_at": "2026-03-02T10:30:00Z",
            "project_id": project,
            "tag_ids": [tag],
            "description": "spec",
        }
        entry = h.send("POST", "/time-entries", body)["id"]
        assert_as_shown(one_event(h, sender, "time_entry.created"), entry_shown(h, entry))
        h.send("PATCH", f"/time-entries/{entry}", {"description": "spec, v2"}, status=200)
        data = one_event(h, sender, "time_entry.updated")
        assert data["description"] == "spec, v2"
        assert_as_shown(data, entry_shown(h, entry))
        h.send("DELETE", f"/time-entries/{entry}", status=204)
        assert one_event(h, sender, "time_entry.deleted") == {"id": entry}

        timer = h.send("POST", "/timer/start", {"description": "timed"})["id"]
        started = h.deliver(sender)
        assert [got.json["type"] for got in started] == ["time_entry.created", "timer.started"]
        assert started[0].json["data"] == started[1].json["data"]
        running = started[0].json["data"]
        assert (running["id"], running["end_at"]) == (timer, None)
        assert_as_shown(running, entry_shown(h, timer), but="duration_seconds")
        h.send("POST", "/timer/stop", status=200)
        stopped = h.deliver(sender)
        assert [got.json["type"] for got in stopped] == ["time_entry.updated", "timer.stopped"]
        assert stopped[0].json["data"] == stopped[1].json["data"]
        assert_as_shown(stopped[0].json["data"], entry_shown(h, timer))
