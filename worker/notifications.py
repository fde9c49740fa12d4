"""Scheduled notification jobs: long-running timers, weekly summaries, email delivery.

They run as RQ jobs on the notifications queue, enqueued by the scheduler
(worker/notification_scheduler.py): `*_job` are their entry points. Each looks at the
state of the database, not at what happened since it last ran, and every notification has
a unique dedup key, so a job run twice, late, or by two workers at once makes no
notification twice and misses none.

Every job takes the time as a parameter (`now`): an injectable clock, so tests need no
sleeps and can stand on any Monday morning of any time zone.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from notifications.service import create_notifications
from shared.config import get_settings
from shared.db import write_sessionmaker
from shared.notifications import NotificationDraft, NotificationKind
from worker.notification_email import deliver_due_emails, mailer_for

log = logging.getLogger("evotrack.notifications")

SUMMARY_HOUR = 8  # Monday 08:00 in the organization's time zone
SessionFactory = Callable[[], Session]


def _orgs_param(org_ids: Sequence[uuid.UUID] | None) -> list[uuid.UUID] | None:
    return list(org_ids) if org_ids is not None else None


def _hours(seconds: int) -> str:
    return f"{seconds / 3600:.1f} h"


# --- Long-running timers ------------------------------------------------------------------

# Running timers past their organization's limit whose user was not told yet.
_LONG_TIMERS = """
    SELECT e.id, e.org_id, e.user_id, e.start_at, e.description, p.name AS project_name,
           o.long_running_timer_seconds AS limit_seconds
    FROM time_entries e
    JOIN organizations o ON o.id = e.org_id AND o.deleted_at IS NULL
    JOIN memberships m ON m.org_id = e.org_id AND m.user_id = e.user_id
        AND m.deleted_at IS NULL
    LEFT JOIN projects p ON p.id = e.project_id
    WHERE e.end_at IS NULL AND e.deleted_at IS NULL
      AND e.start_at <= CAST(:now AS timestamptz)
          - make_interval(secs => o.long_running_timer_seconds)
      AND (CAST(:orgs AS uuid[]) IS NULL OR e.org_id = ANY(:orgs))
      AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.org_id = e.org_id
          AND n.dedup_key = 'long_running_timer:' || e.id::text || ':' || e.user_id::text)
"""


def _timer_draft(row: Any, limit_seconds: int) -> NotificationDraft:
    subject = f"on {row.project_name}" if row.project_name else "without a project"
    description = f' ("{row.description}")' if row.description else ""
    return NotificationDraft(
        org_id=row.org_id,
        user_id=row.user_id,
        kind=NotificationKind.LONG_RUNNING_TIMER,
        dedup_key=f"long_running_timer:{row.id}:{row.user_id}",
        title=f"Your timer has been running for over {_hours(limit_seconds)}",
        body=(
            f"Your timer {subject}{description} started at"
            f" {row.start_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC and is still running."
            " Stop it if you forgot it."
        ),
        data={
            "entry_id": str(row.id),
            "start_at": row.start_at.isoformat(),
            "limit_seconds": limit_seconds,
        },
    )


def notify_long_running_timers(
    sessions: SessionFactory, now: datetime, *, org_ids: Sequence[uuid.UUID] | None = None
) -> int:
    """Tell the user of every timer running longer than its organization's limit
    (`organizations.long_running_timer_seconds`), once per entry."""
    with sessions() as session, session.begin():
        rows = session.execute(text(_LONG_TIMERS), {"now": now, "orgs": _orgs_param(org_ids)}).all()
        drafts = [_timer_draft(row, int(row.limit_seconds)) for row in rows]
        return len(create_notifications(session, drafts, now=now))


# --- Weekly summaries ---------------------------------------------------------------------

# Organizations past Monday 08:00 of their current week (wall clock in their time zone)
# whose summary of the week before is not done yet.
_DUE_SUMMARIES = """
    SELECT o.id, o.name,
           (date_trunc('week', CAST(:now AS timestamptz) AT TIME ZONE o.timezone))::date
               AS this_monday
    FROM organizations o
    WHERE o.deleted_at IS NULL
      AND (CAST(:orgs AS uuid[]) IS NULL OR o.id = ANY(:orgs))
      AND CAST(:now AS timestamptz) AT TIME ZONE o.timezone
          >= date_trunc('week', CAST(:now AS timestamptz) AT TIME ZONE o.timezone)
             + make_interval(hours => :hour)
      AND NOT EXISTS (SELECT 1 FROM notification_runs r WHERE r.org_id = o.id
          AND r.kind = 'weekly_summary'
          AND r.period_start = (date_trunc('week', CAST(:now AS timestamptz)
              AT TIME ZONE o.timezone) - interval '7 days')::date)
"""

# Finished entries of the week by member and project, from the daily totals (local days).
_WEEK_TOTALS = """
    SELECT t.user_id, t.project_id, p.name AS project_name,
           SUM(t.seconds)::bigint AS seconds, SUM(t.billable_seconds)::bigint AS billable_seconds
    FROM proj_daily_totals t
    JOIN memberships m ON m.org_id = t.org_id AND m.user_id = t.user_id AND m.deleted_at IS NULL
    LEFT JOIN projects p ON p.id = t.project_id
    WHERE t.org_id = :org AND t.day >= :first_day AND t.day < :next_monday
    GROUP BY t.user_id, t.project_id, p.name
    HAVING SUM(t.seconds) > 0
    ORDER BY t.user_id, seconds DESC, p.name NULLS LAST
"""


@dataclass(frozen=True)
class Week:
    org_id: uuid.UUID
    org_name: str
    first_day: date  # the Monday

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=6)


def _summary_draft(week: Week, user_id: uuid.UUID, rows: list[Any]) -> NotificationDraft:
    total = sum(int(r.seconds) for r in rows)
    billable = sum(int(r.billable_seconds) for r in rows)
    lines = [f"- {r.project_name or '(no project)'}: {_hours(int(r.seconds))}" for r in rows]
    return NotificationDraft(
        org_id=week.org_id,
        user_id=user_id,
        kind=NotificationKind.WEEKLY_SUMMARY,
        dedup_key=f"weekly_summary:{week.first_day.isoformat()}:{user_id}",
        title=f"Your week in {week.org_name}: {_hours(total)}",
        body=(
            f"From {week.first_day:%A %d %B} to {week.last_day:%A %d %B %Y} you tracked"
            f" {_hours(total)} ({_hours(billable)} billable):\n" + "\n".join(lines)
        ),
        data={
            "week_start": week.first_day.isoformat(),
            "week_end": week.last_day.isoformat(),
            "seconds": total,
            "billable_seconds": billable,
            "projects": [
                {
                    "project_id": str(r.project_id) if r.project_id else None,
                    "name": r.project_name,
                    "seconds": int(r.seconds),
                    "billable_seconds": int(r.billable_seconds),
                }
                for r in rows
            ],
        },
    )


def _summarize_week(session: Session, week: Week, now: datetime) -> int:
    rows = session.execute(
        text(_WEEK_TOTALS),
        {
            "org": week.org_id,
            "first_day": week.first_day,
            "next_monday": week.first_day + timedelta(days=7),
        },
    ).all()
    by_user: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        by_user[row.user_id].append(row)
    drafts = [_summary_draft(week, user_id, user_rows) for user_id, user_rows in by_user.items()]
    made = create_notifications(session, drafts, now=now)
    session.execute(
        text(
            "INSERT INTO notification_runs (org_id, kind, period_start)"
            " VALUES (:org, 'weekly_summary', :period) ON CONFLICT DO NOTHING"
        ),
        {"org": week.org_id, "period": week.first_day},
    )
    return len(made)


def due_summaries(
    sessions: SessionFactory, now: datetime, *, org_ids: Sequence[uuid.UUID] | None = None
) -> list[Week]:
    """The weeks to summarize at `now`: last week of every organization whose Monday
    08:00 has come and whose summary is not done yet. A scheduler that was down on Monday
    catches up later in the week."""
    with sessions() as session:
        due = session.execute(
            text(_DUE_SUMMARIES), {"now": now, "orgs": _orgs_param(org_ids), "hour": SUMMARY_HOUR}
        ).all()
    return [Week(org_id, str(name), monday - timedelta(days=7)) for org_id, name, monday in due]


def send_weekly_summaries(
    sessions: SessionFactory, now: datetime, *, org_ids: Sequence[uuid.UUID] | None = None
) -> int:
    """Last week's totals by project to each member who tracked time, for every
    organization due at `now` (see `due_summaries`); one short transaction each."""
    made = 0
    for week in due_summaries(sessions, now, org_ids=org_ids):
        with sessions() as session, session.begin():
            made += _summarize_week(session, week, now)
    return made


# --- RQ entry points ----------------------------------------------------------------------
# The scheduler enqueues these by name with the tick's time as an ISO string (RQ's
# serializer keeps the arguments plain); `org_ids` narrows a job to some organizations.


def _org_ids(org_ids: Sequence[str] | None) -> list[uuid.UUID] | None:
    return [uuid.UUID(o) for o in org_ids] if org_ids is not None else None


def long_running_timers_job(now: str, org_ids: Sequence[str] | None = None) -> int:
    """Tell every timer past its organization's limit at `now`; return how many."""
    return notify_long_running_timers(
        write_sessionmaker(), datetime.fromisoformat(now), org_ids=_org_ids(org_ids)
    )


def weekly_summary_job(org_id: str, now: str) -> int:
    """Send one organization's summary of last week if it is due at `now`."""
    return send_weekly_summaries(
        write_sessionmaker(), datetime.fromisoformat(now), org_ids=[uuid.UUID(org_id)]
    )


def deliver_emails_job(now: str, org_ids: Sequence[str] | None = None) -> dict[str, int]:
    """Send the emails due at `now` through the process's SMTP settings (a bounded run:
    what is left goes to the next job)."""
    settings = get_settings()
    report = deliver_due_emails(
        write_sessionmaker(),
        mailer_for(settings),
        settings,
        datetime.fromisoformat(now),
        org_ids=_org_ids(org_ids),
    )
    return asdict(report)
