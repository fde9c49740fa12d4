"""long_running_timer and weekly_summary: scheduled jobs on the worker, driven by an
injected clock (no sleeps), each notification exactly once whatever runs twice; the
scheduler enqueues them as RQ jobs, one scheduler active at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import Engine, text

import worker.notifications
from shared.config import get_settings
from tests.factories import OrgHandle, UserHandle, add_member, make_org
from tests.notifications.helpers import clock_at, inbox, notification_rows, sessions, work_off
from tests.projections.conftest import drain
from worker.notification_scheduler import (
    JOB_RETRY_DELAYS_SECONDS,
    SCHEDULER_LOCK,
    NotificationScheduler,
    release_due_retries,
)
from worker.notifications import (
    notify_long_running_timers,
    send_weekly_summaries,
    weekly_summary_job,
)

EIGHT_HOURS = 8 * 3600


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).astimezone(UTC)


def write_entry(
    api: httpx.Client,
    org: OrgHandle,
    user: UserHandle,
    start: str,
    end: str | None = None,
    **fields: Any,
) -> str:
    body = {"start_at": start, "user_id": str(user.id), **fields}
    if end is not None:
        body["end_at"] = end
    response = api.post(org.path("/time-entries"), json=body, headers=org.owner.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def in_parallel(*jobs: Callable[[], object]) -> None:
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- Long-running timers ------------------------------------------------------------------


def test_a_timer_past_the_limit_is_told_to_its_user_once(
    api: httpx.Client, qapi: httpx.Client, db: Engine
) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    entry = write_entry(api, org, member, "2026-05-04T08:00:00Z", description="Writing")
    other = add_member(db, org, "member")
    write_entry(api, org, other, "2026-05-04T12:00:00Z")  # started later
    finished = add_member(db, org, "member")
    write_entry(api, org, finished, "2026-05-04T01:00:00Z", "2026-05-04T10:00:00Z")

    def run(now: str) -> int:
        return notify_long_running_timers(sessions(db), at(now), org_ids=[org.id])

    assert run("2026-05-04T15:59:59Z") == 0
    assert run("2026-05-04T16:00:00Z") == 1
    assert run("2026-05-04T16:00:00Z") == 0
    assert run("2026-05-05T09:00:00Z") == 1  # the other timer, not this one again

    [row] = notification_rows(db, member.id)
    assert row["kind"] == "long_running_timer"
    assert row["data"] == {
        "entry_id": entry,
        "start_at": "2026-05-04T08:00:00+00:00",
        "limit_seconds": EIGHT_HOURS,
    }
    assert row["title"] == "Your timer has been running for over 8.0 h"
    assert '("Writing")' in row["body"]
    assert notification_rows(db, finished.id) == []
    drain(sessions(db))
    assert [n["kind"] for n in inbox(qapi, member)] == ["long_running_timer"]


def test_duplicate_timer_jobs_make_one_notification(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    members = [add_member(db, org, "member") for _ in range(5)]
    for member in members:
        write_entry(api, org, member, "2026-05-04T08:00:00Z")
    now = at("2026-05-04T20:00:00Z")
    made: list[int] = []

    def job() -> None:
        made.append(notify_long_running_timers(sessions(db), now, org_ids=[org.id]))

    in_parallel(job, job, job)
    assert sum(made) == 5
    for member in members:
        assert len(notification_rows(db, member.id)) == 1


def set_timer_limit(api: httpx.Client, org: OrgHandle, seconds: int) -> None:
    response = api.patch(
        org.path(), json={"long_running_timer_seconds": seconds}, headers=org.owner.headers
    )
    assert response.status_code == 200, response.text


def test_each_organization_has_its_own_limit(api: httpx.Client, db: Engine) -> None:
    strict, relaxed, default = make_org(db), make_org(db), make_org(db)
    set_timer_limit(api, strict, 3600)
    set_timer_limit(api, relaxed, 24 * 3600)
    users = {org.id: add_member(db, org, "member") for org in (strict, relaxed, default)}
    for org in (strict, relaxed, default):
        write_entry(api, org, users[org.id], "2026-05-04T08:00:00Z")
    orgs = [strict.id, relaxed.id, default.id]

    def run(now: str) -> int:
        return notify_long_running_timers(sessions(db), at(now), org_ids=orgs)

    assert run("2026-05-04T08:59:59Z") == 0
    assert run("2026-05-04T09:00:00Z") == 1  # strict: 1 h
    assert run("2026-05-04T16:00:00Z") == 1  # default: 8 h
    assert run("2026-05-05T07:59:59Z") == 0
    assert run("2026-05-05T08:00:00Z") == 1  # relaxed: 24 h
    limits = {
        org_id: [r["data"]["limit_seconds"] for r in notification_rows(db, user.id)]
        for org_id, user in users.items()
    }
    assert limits == {strict.id: [3600], relaxed.id: [24 * 3600], default.id: [EIGHT_HOURS]}
    [strict_row] = notification_rows(db, users[strict.id].id)
    assert strict_row["title"] == "Your timer has been running for over 1.0 h"


def test_a_limit_changed_later_applies_to_running_timers_but_tells_each_once(
    api: httpx.Client, db: Engine
) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    write_entry(api, org, member, "2026-05-04T08:00:00Z")
    now = at("2026-05-04T10:00:00Z")  # 2 h: within the default 8 h
    assert notify_long_running_timers(sessions(db), now, org_ids=[org.id]) == 0
    set_timer_limit(api, org, 3600)
    assert notify_long_running_timers(sessions(db), now, org_ids=[org.id]) == 1
    set_timer_limit(api, org, 900)  # lowered again: the same entry is not told twice
    assert notify_long_running_timers(sessions(db), now, org_ids=[org.id]) == 0
    assert len(notification_rows(db, member.id)) == 1


# --- Weekly summaries ---------------------------------------------------------------------


def summaries(db: Engine, user: UserHandle) -> list[Any]:
    return notification_rows(db, user.id, "weekly_summary")


def test_the_weekly_summary_in_the_week_europe_springs_forward(
    api: httpx.Client, qapi: httpx.Client, db: Engine
) -> None:
    """Berlin, Monday 23 to Sunday 29 March 2026 (clocks go forward on the 29th): the
    summary goes out on Monday 30 March at 08:00 CEST, which is 06:00 UTC."""
    org = make_org(db, timezone="Europe/Berlin")
    project = api.post(org.path("/projects"), json={"name": "Apollo"}, headers=org.owner.headers)
    project_id = project.json()["data"]["id"]
    worker, idle = add_member(db, org, "member"), add_member(db, org, "member")
    # Monday 09:00 CET, 2 h on Apollo; Sunday 23:30 CEST (after the change), 30 min.
    write_entry(api, org, worker, "2026-03-23T08:00:00Z", "2026-03-23T10:00:00Z",
                project_id=project_id)  # fmt: skip
    write_entry(api, org, worker, "2026-03-29T21:30:00Z", "2026-03-29T22:00:00Z")
    # Outside the week: Sunday 22 March 23:30 CET, and Monday 30 March 00:30 CEST.
    write_entry(api, org, worker, "2026-03-22T22:30:00Z", "2026-03-22T23:00:00Z")
    write_entry(api, org, worker, "2026-03-29T22:30:00Z", "2026-03-29T23:00:00Z")
    write_entry(api, org, org.owner, "2026-03-25T09:00:00Z", "2026-03-25T10:00:00Z")
    drain(sessions(db))

    def run(now: str) -> int:
        return send_weekly_summaries(sessions(db), at(now), org_ids=[org.id])

    assert run("2026-03-30T05:59:59Z") == 0  # 07:59 CEST (it would be 06:59 CET)
    assert summaries(db, worker) == []
    assert run("2026-03-30T06:00:00Z") == 2
    assert run("2026-03-30T06:00:00Z") == 0
    assert run("2026-04-02T12:00:00Z") == 0  # later that week: done already

    [summary] = summaries(db, worker)
    assert summary["dedup_key"] == f"weekly_summary:2026-03-23:{worker.id}"
    assert summary["data"] == {
        "week_start": "2026-03-23",
        "week_end": "2026-03-29",
        "seconds": 9000,
        "billable_seconds": summary["data"]["billable_seconds"],
        "projects": [
            {"project_id": project_id, "name": "Apollo", "seconds": 7200,
             "billable_seconds": summary["data"]["projects"][0]["billable_seconds"]},
            {"project_id": None, "name": None, "seconds": 1800,
             "billable_seconds": summary["data"]["projects"][1]["billable_seconds"]},
        ],
    }  # fmt: skip
    assert summary["title"].endswith(": 2.5 h")
    assert "- Apollo: 2.0 h\n- (no project): 0.5 h" in summary["body"]
    assert "Monday 23 March to Sunday 29 March 2026" in summary["body"]
    assert summaries(db, idle) == []
    assert summaries(db, org.owner)[0]["data"]["seconds"] == 3600
    drain(sessions(db))
    assert [n["kind"] for n in inbox(qapi, worker)] == ["weekly_summary"]


def test_the_weekly_summary_in_the_week_new_york_falls_back(api: httpx.Client, db: Engine) -> None:
    """New York, Monday 26 October to Sunday 1 November 2026 (clocks go back on the 1st):
    Monday 2 November 08:00 EST is 13:00 UTC (it would be 12:00 in EDT)."""
    org = make_org(db, timezone="America/New_York")
    member = add_member(db, org, "member")
    # Sunday 1 November 23:30 EST is Monday 04:30 UTC: still the week of 26 October.
    write_entry(api, org, member, "2026-11-02T04:30:00Z", "2026-11-02T05:00:00Z")
    # Monday 26 October 00:15 EDT: the first minutes of the week.
    write_entry(api, org, member, "2026-10-26T04:15:00Z", "2026-10-26T05:15:00Z")
    drain(sessions(db))

    def run(now: str) -> int:
        return send_weekly_summaries(sessions(db), at(now), org_ids=[org.id])

    assert run("2026-11-02T12:59:00Z") == 0
    assert run("2026-11-02T13:00:00Z") == 1
    [summary] = summaries(db, member)
    assert summary["data"]["week_start"] == "2026-10-26"
    assert summary["data"]["seconds"] == 5400


def test_a_week_without_tracked_time_tells_nobody_and_the_next_week_comes_next(
    api: httpx.Client, db: Engine
) -> None:
    org = make_org(db, timezone="Asia/Tokyo")
    member = add_member(db, org, "member")
    # Monday 4 May 2026 10:00 JST: a week later it is in the summary.
    write_entry(api, org, member, "2026-05-04T01:00:00Z", "2026-05-04T02:00:00Z")
    drain(sessions(db))
    # Monday 4 May 08:00 JST (Sunday 23:00 UTC): the week of 27 April is empty.
    assert send_weekly_summaries(sessions(db), at("2026-05-03T23:00:00Z"), org_ids=[org.id]) == 0
    assert send_weekly_summaries(sessions(db), at("2026-05-10T22:59:00Z"), org_ids=[org.id]) == 0
    assert send_weekly_summaries(sessions(db), at("2026-05-10T23:00:00Z"), org_ids=[org.id]) == 1
    assert [s["data"]["week_start"] for s in summaries(db, member)] == ["2026-05-04"]


def test_duplicate_summary_jobs_make_one_notification_each(api: httpx.Client, db: Engine) -> None:
    org = make_org(db)
    members = [add_member(db, org, "member") for _ in range(4)]
    for member in members:
        write_entry(api, org, member, "2026-05-05T08:00:00Z", "2026-05-05T09:00:00Z")
    drain(sessions(db))
    now = at("2026-05-11T08:00:00Z")
    in_parallel(*[lambda: send_weekly_summaries(sessions(db), now, org_ids=[org.id])] * 3)
    # A second scheduler that did not see the first one's run: the keys still hold.
    with db.begin() as conn:
        conn.execute(text("DELETE FROM notification_runs WHERE org_id = :o"), {"o": org.id})
    assert send_weekly_summaries(sessions(db), now, org_ids=[org.id]) == 0
    for member in members:
        assert len(summaries(db, member)) == 1


# --- The scheduler ------------------------------------------------------------------------


def scheduler_at(queue: Queue, clock: Callable[[], datetime]) -> NotificationScheduler:
    stop = threading.Event()
    return NotificationScheduler(get_settings(), stop, queue=lambda: queue, clock=clock)


def test_a_tick_enqueues_rq_jobs_that_do_the_work_once(
    api: httpx.Client, db: Engine, notification_queue: Queue
) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    write_entry(api, org, member, "2026-05-04T08:00:00Z", "2026-05-04T09:00:00Z")
    write_entry(api, org, member, "2026-05-11T06:00:00Z")  # a timer, still running
    drain(sessions(db))
    now = at("2026-05-11T15:00:20Z")  # Monday: the summary of 4 May is due, the timer is 9 h
    scheduler = scheduler_at(notification_queue, lambda: now)

    report = scheduler.tick(org_ids=[org.id])
    assert report is not None
    prefix = notification_queue.name
    assert sorted(report.enqueued) == [
        f"{prefix}-long_running_timers-20260511T150000Z",
        f"{prefix}-weekly_summary-{org.id}-2026-05-04",
    ]
    job = Job.fetch(report.enqueued[0], connection=notification_queue.connection)
    assert job.retries_left == 3
    assert job.retry_intervals == [10, 60, 300]
    assert notification_rows(db, member.id) == []  # the tick only enqueued

    # The same period again, from this scheduler or another: nothing more is enqueued.
    again = scheduler_at(notification_queue, lambda: now + timedelta(seconds=30)).tick([org.id])
    assert again is not None
    assert (again.enqueued, sorted(again.already_queued)) == ([], sorted(report.enqueued))
    assert notification_queue.count == 2

    assert work_off(notification_queue)
    assert sorted(r["kind"] for r in notification_rows(db, member.id)) == [
        "long_running_timer",
        "weekly_summary",
    ]
    # The next minute enqueues the timer job again; it finds nothing new to tell.
    later = scheduler_at(notification_queue, lambda: now + timedelta(minutes=1)).tick([org.id])
    assert later is not None
    assert later.enqueued == [f"{prefix}-long_running_timers-20260511T150100Z"]
    assert work_off(notification_queue)
    assert len(notification_rows(db, member.id)) == 2


def test_jobs_enqueued_twice_under_other_ids_still_tell_once(
    api: httpx.Client, db: Engine, notification_queue: Queue
) -> None:
    """Two schedulers with clocks a minute apart (or RQ running a job twice) enqueue
    different ids: the dedup keys still make one notification each."""
    org = make_org(db)
    members = [add_member(db, org, "member") for _ in range(3)]
    for member in members:
        write_entry(api, org, member, "2026-05-05T08:00:00Z", "2026-05-05T09:00:00Z")
    write_entry(api, org, members[0], "2026-05-11T00:00:00Z")
    drain(sessions(db))
    now = at("2026-05-11T09:00:00Z")
    for shift in (0, 60, 120):
        at_shift = now + timedelta(seconds=shift)
        assert scheduler_at(notification_queue, clock_at(at_shift)).tick([org.id]) is not None
        for job_id in (f"a{shift}", f"b{shift}"):
            notification_queue.enqueue(weekly_summary_job, str(org.id), at_shift.isoformat(),
                                       job_id=job_id)  # fmt: skip
    work_off(notification_queue)
    assert [len(summaries(db, m)) for m in members] == [1, 1, 1]
    assert len(notification_rows(db, members[0].id, "long_running_timer")) == 1


def test_a_failed_job_is_retried_by_rq_after_its_delay(
    api: httpx.Client,
    db: Engine,
    notification_queue: Queue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = make_org(db)
    member = add_member(db, org, "member")
    write_entry(api, org, member, "2026-05-04T08:00:00Z")
    failures = [RuntimeError("database restarting")]
    real = worker.notifications.notify_long_running_timers

    def flaky(*args: Any, **kwargs: Any) -> int:
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(worker.notifications, "notify_long_running_timers", flaky)
    scheduler = scheduler_at(notification_queue, lambda: at("2026-05-04T17:00:00Z"))
    report = scheduler.tick([org.id])
    assert report is not None
    [job_id] = [j for j in report.enqueued if "long_running_timers" in j]
    # RQ schedules the retry at the wall-clock time of the failure plus the first delay,
    # in whole seconds: bracket the failure rather than assume how long the run takes.
    before = int(datetime.now(UTC).timestamp())
    work_off(notification_queue)
    after = int(datetime.now(UTC).timestamp())
    job = Job.fetch(job_id, connection=notification_queue.connection)
    assert job.get_status() == JobStatus.SCHEDULED  # waiting out its first delay
    assert notification_rows(db, member.id) == []
    registry = notification_queue.scheduled_job_registry
    first_delay = JOB_RETRY_DELAYS_SECONDS[0]
    due = int(registry.get_scheduled_time(job).timestamp())
    assert before + first_delay <= due <= after + first_delay
    assert registry.get_jobs_to_schedule(timestamp=due - 1) == []  # not due a second early
    assert registry.get_jobs_to_schedule(timestamp=due) == [job_id]

    # The tick puts back only what is due by RQ's (wall) clock: an hour ahead, not yet.
    registry.schedule(job, datetime.now(UTC) + timedelta(hours=1))
    assert release_due_retries(notification_queue) == 0
    assert job.get_status(refresh=True) == JobStatus.SCHEDULED
    registry.schedule(job, datetime.now(UTC))  # its delay is over
    assert release_due_retries(notification_queue) == 1
    assert work_off(notification_queue)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert len(notification_rows(db, member.id)) == 1


def test_one_scheduler_is_active_at_a_time(
    api: httpx.Client, db: Engine, notification_queue: Queue
) -> None:
    org = make_org(db)
    scheduler = scheduler_at(notification_queue, lambda: at("2026-05-05T08:00:00Z"))
    with db.connect() as other:  # another worker's scheduler holds the lock
        assert other.execute(
            text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": SCHEDULER_LOCK}
        ).scalar_one()
        assert scheduler.tick(org_ids=[org.id]) is None
        assert notification_queue.count == 0
        other.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": SCHEDULER_LOCK})
        other.commit()
    report = scheduler.tick(org_ids=[org.id])
    assert report is not None
    assert len(report.enqueued) == 2  # the timers and the (empty) week of 27 April
    assert notification_queue.count == 2


def test_the_scheduler_thread_ticks_until_stopped(
    db: Engine, notification_queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = make_org(db)
    stop = threading.Event()
    clock = iter(at("2026-05-05T08:00:00Z") + timedelta(minutes=n) for n in range(10**6))
    scheduler = NotificationScheduler(
        get_settings(), stop, queue=lambda: notification_queue, interval_seconds=0.01,
        clock=lambda: next(clock),
    )  # fmt: skip
    original = scheduler.tick
    monkeypatch.setattr(scheduler, "tick", lambda queue: original([org.id], queue=queue))
    scheduler.start()
    deadline = time.monotonic() + 60  # bounds a failure only
    while notification_queue.count < 2 and time.monotonic() < deadline:
        stop.wait(0.05)
    stop.set()
    scheduler.thread.join(60)
    assert not scheduler.thread.is_alive()
    assert notification_queue.count >= 2  # one timers job per minute of the clock
