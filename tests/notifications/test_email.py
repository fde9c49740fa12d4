"""Email delivery: a local SMTP server (aiosmtpd) receives the emails; failures are retried
with backoff and never hold the others up; a killed worker loses none."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from rq import Queue
from sqlalchemy import Engine

from evotrack.embedded import EmbeddedRedis, free_port
from shared.config import Settings, get_settings
from tests.factories import OrgHandle, UserHandle, make_org, make_user
from tests.notifications.helpers import clock_at, notification_rows, sessions, work_off
from tests.projections.conftest import drain
from tests.services import ROOT
from worker.notification_email import (
    LEASE_SECONDS,
    MAX_ATTEMPTS,
    RETRY_DELAYS_SECONDS,
    LogMailer,
    SmtpMailer,
    claim_due_emails,
    deliver_due_emails,
)
from worker.notification_scheduler import NotificationScheduler

# Emails made by the projector are due from the real time they were made.
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)


@pytest.fixture(autouse=True)
def _now_is_after_the_test_starts() -> None:
    """NOW, a little after each test starts: rows made during the test are due at NOW (set
    once at import, it fell behind them when a loaded suite took longer than 5 minutes)."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)


class Inbox:
    """What the SMTP server received; it can refuse recipients and fail messages."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused: set[str] = set()
        self.failures_left = 0
        self.lock = threading.Lock()
        self.recipients = 0
        # While `hold` is set, a client that names a recipient is kept waiting there.
        self.hold = threading.Event()
        self.holding = threading.Event()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.recipients += 1
        if self.hold.is_set():
            self.holding.set()
            while self.hold.is_set():
                await asyncio.sleep(0.02)
            return "421 4.3.2 closing"
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        with self.lock:
            if self.failures_left:
                self.failures_left -= 1
                return "451 4.3.0 try again later"
            content = envelope.original_content or b""
            message = email.message_from_bytes(content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 OK"

    def to(self, user: UserHandle) -> list[EmailMessage]:
        return [m for m in self.messages if user.email in str(m["To"])]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, Settings]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings = get_settings().model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": controller.port,
            "smtp_from": "EvoTrack <noreply@evotrack.test>",
        }
    )
    yield inbox, settings
    controller.stop()


def wants_email(api: httpx.Client, user: UserHandle, kind: str = "member_added") -> None:
    response = api.put(
        "/users/me/notification-settings",
        json={kind: {"in_app": True, "email": True}},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text


def added_members(api: httpx.Client, db: Engine, count: int) -> tuple[OrgHandle, list[UserHandle]]:
    """Members who want emails, added to a new organization: one member_added each."""
    org = make_org(db)
    members = []
    for _ in range(count):
        member = make_user(db, full_name="Ada Lovelace")
        wants_email(api, member)
        response = api.post(
            org.path("/members"), json={"email": member.email, "role": "member"},
            headers=org.owner.headers,
        )  # fmt: skip
        assert response.status_code == 201, response.text
        members.append(member)
    drain(sessions(db))
    return org, members


def deliver(db: Engine, settings: Settings, org: OrgHandle, now: datetime) -> Any:
    return deliver_due_emails(sessions(db), SmtpMailer(settings), settings, now, org_ids=[org.id])


def test_an_email_has_a_text_and_an_html_part_and_goes_once(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, [member] = added_members(api, db, 1)
    [row] = notification_rows(db, member.id)
    assert row["email_status"] == "pending"

    report = deliver(db, settings, org, NOW)
    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [message] = inbox.to(member)
    assert message["Subject"] == row["title"]
    assert message["From"] == "EvoTrack <noreply@evotrack.test>"
    assert message["To"] == f"Ada Lovelace <{member.email}>"
    assert message["Message-ID"] == f"<{row['id']}@evotrack>"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert rich is not None
    assert row["body"] in plain.get_content()
    assert "<h2>You were added to" in rich.get_content()

    [sent] = notification_rows(db, member.id)
    assert (sent["email_status"], sent["email_attempts"]) == ("sent", 1)
    assert sent["email_sent_at"] == NOW
    assert deliver(db, settings, org, NOW + timedelta(days=1)).sent == 0
    assert len(inbox.to(member)) == 1


def test_nobody_is_emailed_who_did_not_ask(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org = make_org(db)
    member = make_user(db)
    response = api.post(
        org.path("/members"), json={"email": member.email, "role": "member"},
        headers=org.owner.headers,
    )  # fmt: skip
    assert response.status_code == 201
    drain(sessions(db))
    assert deliver(db, settings, org, NOW).sent == 0
    assert inbox.messages == []
    assert notification_rows(db, member.id)[0]["email_status"] == "skipped"


def test_a_failed_email_is_retried_with_backoff(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, [member] = added_members(api, db, 1)
    inbox.failures_left = 2

    assert deliver(db, settings, org, NOW).retrying == 1
    [row] = notification_rows(db, member.id)
    assert row["email_status"] == "pending"
    assert row["email_attempts"] == 1
    assert row["next_attempt_at"] == NOW + timedelta(seconds=RETRY_DELAYS_SECONDS[0])
    assert "451" in row["email_error"]

    first_retry = row["next_attempt_at"]
    assert deliver(db, settings, org, first_retry - timedelta(seconds=1)).retrying == 0  # not due
    assert deliver(db, settings, org, first_retry).retrying == 1
    second_retry = notification_rows(db, member.id)[0]["next_attempt_at"]
    assert second_retry == first_retry + timedelta(seconds=RETRY_DELAYS_SECONDS[1])
    assert deliver(db, settings, org, second_retry).sent == 1
    assert len(inbox.to(member)) == 1
    [row] = notification_rows(db, member.id)
    assert (row["email_status"], row["email_attempts"], row["email_error"]) == ("sent", 3, None)


def test_an_email_that_keeps_failing_is_given_up_after_the_last_attempt(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, [member] = added_members(api, db, 1)
    inbox.failures_left = 1000
    now = NOW
    for _ in range(MAX_ATTEMPTS):
        deliver(db, settings, org, now)
        now += timedelta(days=1)
    [row] = notification_rows(db, member.id)
    assert (row["email_status"], row["email_attempts"]) == ("failed", MAX_ATTEMPTS)
    assert row["next_attempt_at"] is None
    assert deliver(db, settings, org, now).retrying == 0


def test_one_failing_email_does_not_hold_up_the_others(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, members = added_members(api, db, 3)
    inbox.refused.add(members[1].email)

    report = deliver(db, settings, org, NOW)
    assert (report.sent, report.failed) == (2, 1)  # a refused mailbox is not retried
    assert [len(inbox.to(m)) for m in members] == [1, 0, 1]
    assert notification_rows(db, members[1].id)[0]["email_status"] == "failed"


def test_smtp_down_is_retried_later(api: httpx.Client, db: Engine) -> None:
    org, [member] = added_members(api, db, 1)
    nowhere = get_settings().model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": free_port()})
    assert deliver(db, nowhere, org, NOW).retrying == 1
    [row] = notification_rows(db, member.id)
    assert row["email_status"] == "pending"
    assert row["next_attempt_at"] > NOW


def test_a_worker_killed_while_sending_loses_no_email(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, [member] = added_members(api, db, 1)
    # A worker claims the email, commits the claim, and dies before sending it.
    with sessions(db)() as session, session.begin():
        [claimed] = claim_due_emails(session, NOW, batch_size=10, org_ids=[org.id])
    assert claimed.to_address == member.email

    assert deliver(db, settings, org, NOW).sent == 0  # another worker leaves it leased
    lease_over = NOW + timedelta(seconds=LEASE_SECONDS)
    assert deliver(db, settings, org, lease_over).sent == 1
    assert len(inbox.to(member)) == 1
    [row] = notification_rows(db, member.id)
    assert (row["email_status"], row["email_attempts"]) == ("sent", 2)


def test_concurrent_deliveries_send_each_email_once(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, members = added_members(api, db, 6)

    def run() -> None:
        deliver_due_emails(
            sessions(db), SmtpMailer(settings), settings, NOW, batch_size=2, org_ids=[org.id]
        )

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [len(inbox.to(m)) for m in members] == [1] * 6
    ids = [str(m["Message-ID"]) for m in inbox.messages]
    assert len(set(ids)) == len(ids) == 6


def test_without_smtp_settings_emails_are_logged(
    api: httpx.Client, db: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    org, [member] = added_members(api, db, 1)
    settings = get_settings().model_copy(update={"smtp_host": ""})
    with caplog.at_level(logging.INFO, logger="evotrack.notifications.email"):
        report = deliver_due_emails(sessions(db), LogMailer(), settings, NOW, org_ids=[org.id])
    assert report.sent == 1
    assert any(member.email in record.getMessage() for record in caplog.records)
    assert notification_rows(db, member.id)[0]["email_status"] == "sent"


def test_smtp_down_costs_one_attempt_to_connect_not_one_per_email(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, members = added_members(api, db, 3)
    connects: list[int] = []

    class Unreachable(SmtpMailer):
        def _connect(self) -> Any:
            connects.append(1)
            raise ConnectionRefusedError("connection refused")

    report = deliver_due_emails(sessions(db), Unreachable(settings), settings, NOW,
                                org_ids=[org.id])  # fmt: skip
    assert (report.sent, report.retrying) == (0, 3)
    assert connects == [1]
    for member in members:
        [row] = notification_rows(db, member.id)
        assert (row["email_status"], row["email_attempts"]) == ("pending", 1)
        assert row["next_attempt_at"] == NOW + timedelta(seconds=RETRY_DELAYS_SECONDS[0])
        assert "ConnectionRefusedError" in row["email_error"]
    # The server is back at the first retry: every email goes, once.
    later = NOW + timedelta(seconds=RETRY_DELAYS_SECONDS[0])
    assert deliver(db, settings, org, later).sent == 3
    assert [len(inbox.to(m)) for m in members] == [1, 1, 1]


def test_a_delivery_run_stops_claiming_when_its_time_is_spent(
    api: httpx.Client, db: Engine, smtp: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp
    org, members = added_members(api, db, 5)

    def run() -> Any:
        mailer = SmtpMailer(settings)
        return deliver_due_emails(
            sessions(db), mailer, settings, NOW, batch_size=2, time_budget_seconds=0,
            org_ids=[org.id],
        )  # fmt: skip

    assert run().sent == 2  # one batch, then the budget is spent
    assert run().sent == 2
    assert run().sent == 1
    assert [len(inbox.to(m)) for m in members] == [1] * 5


@pytest.fixture
def smtp_settings(
    smtp: tuple[Inbox, Settings], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Inbox, Settings]]:
    """The local SMTP server in the process's settings, as a worker reads them."""
    inbox, settings = smtp
    monkeypatch.setenv("SMTP_HOST", settings.smtp_host)
    monkeypatch.setenv("SMTP_PORT", str(settings.smtp_port))
    monkeypatch.setenv("SMTP_FROM", settings.smtp_from)
    get_settings.cache_clear()
    yield smtp
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_scheduler_enqueues_the_delivery_and_a_worker_sends_it(
    api: httpx.Client,
    db: Engine,
    smtp_settings: tuple[Inbox, Settings],
    notification_queue: Queue,
) -> None:
    inbox, settings = smtp_settings
    org, [member] = added_members(api, db, 1)
    wants_email(api, member, "long_running_timer")
    entry = api.post(
        org.path("/time-entries"),
        json={"start_at": (NOW - timedelta(hours=9)).isoformat(), "user_id": str(member.id)},
        headers=org.owner.headers,
    )
    assert entry.status_code == 201, entry.text
    scheduler = NotificationScheduler(
        settings, threading.Event(), queue=lambda: notification_queue, clock=lambda: NOW
    )
    first = scheduler.tick(org_ids=[org.id])
    assert first is not None
    assert any("deliver_emails" in job_id for job_id in first.enqueued)  # member_added
    work_off(notification_queue)  # the timer is told; member_added is emailed
    second = scheduler.tick(org_ids=[org.id])  # the timer's email is due now
    assert second is not None
    work_off(notification_queue)
    subjects = sorted(str(m["Subject"]) for m in inbox.to(member))
    assert subjects[0].startswith("You were added to")
    assert subjects[1] == "Your timer has been running for over 8.0 h"
    assert [r["email_status"] for r in notification_rows(db, member.id)] == ["sent", "sent"]
    third = scheduler.tick(org_ids=[org.id])
    assert third is not None
    assert not any("deliver_emails" in job_id for job_id in third.enqueued)  # nothing due


# --- A worker process killed while delivering ----------------------------------------------


def run_worker_process(redis_url: str, queue: Queue, smtp: Settings, log_path: Path) -> Any:
    """`python -m worker.main --burst` on the test's own Redis and the test database."""
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "WAKEUP_QUEUE": f"{queue.name}-wakeup",
        "NOTIFICATIONS_QUEUE": queue.name,
        "SMTP_HOST": smtp.smtp_host,
        "SMTP_PORT": str(smtp.smtp_port),
        "SMTP_FROM": smtp.smtp_from,
        "LOG_LEVEL": "INFO",
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "worker.main", "--burst"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    yield server
    server.stop()


def test_a_worker_process_killed_mid_delivery_loses_no_email_and_sends_none_twice(
    api: httpx.Client,
    db: Engine,
    smtp: tuple[Inbox, Settings],
    own_redis: EmbeddedRedis,
    tmp_path: Path,
) -> None:
    inbox, settings = smtp
    org, [member] = added_members(api, db, 1)
    queue = Queue(f"kill-{uuid.uuid4().hex[:8]}", connection=redis.Redis.from_url(own_redis.url))
    scheduler = NotificationScheduler(
        settings, threading.Event(), queue=lambda: queue, clock=lambda: NOW
    )
    assert scheduler.tick(org_ids=[org.id]) is not None
    log_path = tmp_path / "worker.log"

    # The worker claims the email and is killed while the SMTP server holds it at RCPT.
    inbox.hold.set()
    worker = run_worker_process(own_redis.url, queue, settings, log_path)
    try:
        assert inbox.holding.wait(60), log_path.read_text()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)
        inbox.hold.clear()
    assert inbox.messages == []
    [row] = notification_rows(db, member.id)
    assert (row["email_status"], row["email_attempts"]) == ("pending", 1)
    assert row["next_attempt_at"] == NOW + timedelta(seconds=LEASE_SECONDS)

    # Ticks before the lease is over leave it alone; after it, duplicate jobs (a second
    # scheduler's) and a new worker process send it exactly once.
    lease_over = NOW + timedelta(seconds=LEASE_SECONDS)
    for clock in (NOW + timedelta(seconds=LEASE_SECONDS - 1), lease_over):
        for when in (clock, clock + timedelta(seconds=15)):
            NotificationScheduler(
                settings, threading.Event(), queue=lambda: queue, clock=clock_at(when)
            ).tick(org_ids=[org.id])
    second = run_worker_process(own_redis.url, queue, settings, log_path)
    assert second.wait(60) == 0, log_path.read_text()
    [message] = inbox.to(member)
    [row] = notification_rows(db, member.id)
    assert message["Message-ID"] == f"<{row['id']}@evotrack>"
    assert (row["email_status"], row["email_attempts"]) == ("sent", 2)
    assert len(notification_rows(db, member.id)) == 1  # one notification, in the inbox
