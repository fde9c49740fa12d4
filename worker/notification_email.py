"""Email delivery of notifications, with retries.

A notification the recipient wants by email is made `pending`, due at once. Delivery
claims a batch of due ones in a short transaction (FOR UPDATE SKIP LOCKED: concurrent
workers take different rows) and moves their next attempt a lease ahead, so that a worker
killed while sending leaves them to be tried again once the lease has passed: none is
lost. Each one is then sent, and its outcome recorded in its own short transaction; a
failure is retried later with a growing delay and never holds up the others.

A delivery run is an RQ job that shares its worker with other jobs, so it is bounded: it
stops claiming after `TIME_BUDGET_SECONDS` (the next job takes the rest), and when the
SMTP server cannot be reached the rest of its batch is scheduled for a retry with that
error instead of waiting for one connection timeout per email.

SMTP cannot be exactly-once: a worker killed after the server accepted a message and
before recording it sends it again after the lease. Every attempt of a notification
carries the same Message-ID, so mail clients and servers that deduplicate see one.
Without SMTP_HOST the emails are written to the log instead.
"""

from __future__ import annotations

import html
import logging
import smtplib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.config import Settings

log = logging.getLogger("evotrack.notifications.email")

# Delays before the 2nd, 3rd, … attempt; after the last one the email is given up.
RETRY_DELAYS_SECONDS = (60, 300, 900, 3600, 6 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS_SECONDS) + 1
LEASE_SECONDS = 600
SMTP_TIMEOUT_SECONDS = 15.0
TIME_BUDGET_SECONDS = 20.0
MESSAGE_ID_DOMAIN = "evotrack"


@dataclass(frozen=True)
class Email:
    notification_id: uuid.UUID
    to_address: str
    to_name: str
    title: str
    body: str
    attempt: int


def _one_line(value: str) -> str:
    return " ".join(value.split())


def build_message(email: Email, sender: str) -> EmailMessage:
    """A plain-text and an HTML part; the Message-ID is the notification's, so every
    attempt of one notification is recognizably the same message."""
    message = EmailMessage()
    message["Subject"] = _one_line(email.title)
    message["From"] = sender
    message["To"] = formataddr((_one_line(email.to_name), email.to_address))
    message["Message-ID"] = f"<{email.notification_id}@{MESSAGE_ID_DOMAIN}>"
    message["Date"] = format_datetime(datetime.now().astimezone())
    message.set_content(f"{email.title}\n\n{email.body}\n\n-- \nEvoTrack\n")
    message.add_alternative(_html(email), subtype="html")
    return message


def _html(email: Email) -> str:
    blocks: list[str] = []
    items: list[str] = []
    for line in email.body.splitlines():
        if line.startswith("- "):
            items.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if items:
            blocks.append(f"<ul>{''.join(items)}</ul>")
            items = []
        if line.strip():
            blocks.append(f"<p>{html.escape(line)}</p>")
    if items:
        blocks.append(f"<ul>{''.join(items)}</ul>")
    return (
        '<!doctype html><html><body style="font-family: sans-serif">'
        f"<h2>{html.escape(email.title)}</h2>{''.join(blocks)}"
        '<p style="color: #888">EvoTrack</p></body></html>'
    )


# --- Transports ---------------------------------------------------------------------------


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


class LogMailer:
    """No SMTP configured: the email goes to the log."""

    def send(self, message: EmailMessage) -> None:
        part = message.get_body(preferencelist=("plain",))
        log.info(
            "email to %s: %s",
            message["To"],
            message["Subject"],
            extra={"message_id": message["Message-ID"], "text": part.get_content() if part else ""},
        )

    def close(self) -> None:
        return None


class SmtpMailer:
    """One SMTP connection for a delivery run (smtplib), opened on the first message and
    opened again after the server dropped it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        connection = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
        connection.ehlo()
        if connection.has_extn("starttls"):
            connection.starttls()
            connection.ehlo()
        if s.smtp_user:
            password = s.smtp_password.get_secret_value() if s.smtp_password else ""
            connection.login(s.smtp_user, password)
        return connection

    def send(self, message: EmailMessage) -> None:
        if self.connection is None:
            self.connection = self._connect()
        try:
            self.connection.send_message(message)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None


def mailer_for(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else LogMailer()


# --- Delivery -----------------------------------------------------------------------------

_CLAIM = """
    UPDATE notifications n
    SET email_attempts = n.email_attempts + 1, next_attempt_at = :lease_until,
        updated_at = now()
    FROM users u
    WHERE u.id = n.user_id AND n.id IN (
        SELECT id FROM notifications
        WHERE email_status = 'pending' AND next_attempt_at <= :now
          AND (CAST(:orgs AS uuid[]) IS NULL OR org_id = ANY(:orgs))
        ORDER BY next_attempt_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED)
    RETURNING n.id, u.email, u.full_name, n.title, n.body, n.email_attempts
"""


def claim_due_emails(
    session: Session,
    now: datetime,
    *,
    batch_size: int,
    org_ids: Sequence[uuid.UUID] | None = None,
) -> list[Email]:
    """Take up to `batch_size` due emails for LEASE_SECONDS; the caller commits."""
    rows = session.execute(
        text(_CLAIM),
        {
            "now": now,
            "lease_until": now + timedelta(seconds=LEASE_SECONDS),
            "batch": batch_size,
            "orgs": list(org_ids) if org_ids is not None else None,
        },
    )
    return [Email(r.id, r.email, r.full_name, r.title, r.body, r.email_attempts) for r in rows]


def _record_sent(session: Session, email: Email, now: datetime) -> None:
    session.execute(
        text(
            "UPDATE notifications SET email_status = 'sent', email_sent_at = :now,"
            " next_attempt_at = NULL, email_error = NULL, updated_at = now()"
            " WHERE id = :id AND email_status = 'pending'"
        ),
        {"id": email.notification_id, "now": now},
    )


def _record_failure(session: Session, email: Email, now: datetime, error: BaseException) -> bool:
    """Schedule the next attempt, or give up after the last; True when given up."""
    permanent = isinstance(error, smtplib.SMTPRecipientsRefused)
    give_up = permanent or email.attempt >= MAX_ATTEMPTS
    delay = RETRY_DELAYS_SECONDS[min(email.attempt, MAX_ATTEMPTS - 1) - 1]
    session.execute(
        text(
            "UPDATE notifications SET email_status = :status, next_attempt_at = :next,"
            " email_error = :error, updated_at = now()"
            " WHERE id = :id AND email_status = 'pending'"
        ),
        {
            "id": email.notification_id,
            "status": "failed" if give_up else "pending",
            "next": None if give_up else now + timedelta(seconds=delay),
            "error": f"{type(error).__name__}: {error}"[:2000],
        },
    )
    return give_up


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def deliver_due_emails(
    sessions: Callable[[], Session],
    mailer: Mailer,
    settings: Settings,
    now: datetime,
    *,
    batch_size: int = 20,
    time_budget_seconds: float = TIME_BUDGET_SECONDS,
    org_ids: Sequence[uuid.UUID] | None = None,
) -> DeliveryReport:
    """Send the emails due at `now`, a batch at a time, each outcome committed alone,
    until none is due or the time budget is spent."""
    report = DeliveryReport()
    deadline = time.monotonic() + time_budget_seconds
    try:
        while True:
            with sessions() as session, session.begin():
                batch = claim_due_emails(session, now, batch_size=batch_size, org_ids=org_ids)
            _deliver_batch(sessions, mailer, settings, batch, now, report)
            if len(batch) < batch_size or time.monotonic() >= deadline:
                break
    finally:
        mailer.close()
    return report


def _deliver_batch(
    sessions: Callable[[], Session],
    mailer: Mailer,
    settings: Settings,
    batch: Sequence[Email],
    now: datetime,
    report: DeliveryReport,
) -> None:
    """Send a claimed batch; once the server cannot be reached, the rest of the batch is
    retried later with that error (each still at its own backoff)."""
    down: BaseException | None = None
    for email in batch:
        error = down
        if error is None:
            try:
                mailer.send(build_message(email, settings.smtp_from))
            except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors too
                error = exc
                down = exc if _is_transport_error(exc) else None
        _record_outcome(sessions, email, now, error, report)


def _is_transport_error(error: BaseException) -> bool:
    """A failure of the connection rather than of one message: the server is down, gone
    or not answering."""
    if isinstance(error, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    return isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)


def _record_outcome(
    sessions: Callable[[], Session],
    email: Email,
    now: datetime,
    error: BaseException | None,
    report: DeliveryReport,
) -> None:
    with sessions() as session, session.begin():
        if error is None:
            _record_sent(session, email, now)
            report.sent += 1
            return
        gave_up = _record_failure(session, email, now, error)
    _log_failure(email, error, gave_up)
    if gave_up:
        report.failed += 1
    else:
        report.retrying += 1


def _log_failure(email: Email, error: BaseException, gave_up: bool) -> None:
    extra: dict[str, Any] = {"notification_id": str(email.notification_id)}
    if gave_up:
        log.error("email of %s given up: %s", email.notification_id, error, extra=extra)
    else:
        log.warning(
            "email of %s failed (attempt %d), will retry: %s",
            email.notification_id,
            email.attempt,
            error,
            extra=extra,
        )
