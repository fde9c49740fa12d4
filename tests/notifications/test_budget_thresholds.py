"""budget_threshold: detected by the notifications projection from the change log, once per
threshold, budget and crossing, to the organization's admins and owners and the project's
managers (managers who are members of the project)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, text

from notifications.service import create_notifications
from projections.budget_alerts import Measure, State, evaluate
from projections.notifications import NotificationsProjection
from projections.runner import advance
from tests.conftest import BackgroundProjector
from tests.factories import OrgHandle, add_member, make_org
from tests.notifications.helpers import inbox, notification_rows, sessions
from tests.projections.conftest import drain

HOUR = 3600
DAY0 = datetime(2026, 5, 4, 6, tzinfo=UTC)


class World:
    """An organization with every role, a project with budgets, and a clock of entries."""

    def __init__(self, api: httpx.Client, db: Engine, **project: Any) -> None:
        self.api, self.db = api, db
        self.org: OrgHandle = make_org(db)
        self.admin = add_member(db, self.org, "admin")
        self.manager = add_member(db, self.org, "manager")
        self.member = add_member(db, self.org, "member")
        response = self.call("POST", "/projects", {"name": "Apollo", **project})
        self.project_id = response.json()["data"]["id"]
        self.day = 0
        self.token = response.headers["X-Consistency-Token"]
        # A manager and a plain member on the project (`self.manager` is on none).
        self.project_manager = add_member(db, self.org, "manager")
        self.project_member = add_member(db, self.org, "member")
        for user in (self.project_manager, self.project_member):
            self.call("PUT", f"/projects/{self.project_id}/members/{user.id}")

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = self.api.request(
            method, self.org.path(path), json=body, headers=self.org.owner.headers
        )
        assert response.status_code < 300, response.text
        if "X-Consistency-Token" in response.headers:
            self.token = response.headers["X-Consistency-Token"]
        return response

    def track(self, hours: float, **fields: Any) -> str:
        """One finished entry on the project, on a day of its own."""
        start = DAY0 + timedelta(days=self.day)
        self.day += 1
        body = {
            "start_at": start.isoformat(),
            "end_at": (start + timedelta(seconds=int(hours * HOUR))).isoformat(),
            "project_id": self.project_id,
            "billable": True,
            **fields,
        }
        return str(self.call("POST", "/time-entries", body).json()["data"]["id"])

    def alerts(self, qapi: httpx.Client, user: Any = None) -> list[tuple[str, str, int]]:
        """(subject, metric, threshold) of the user's budget notifications, oldest first."""
        user = user or self.org.owner
        found = inbox(qapi, user, self.token)
        return [
            (n["data"]["subject"], n["data"]["metric"], n["data"]["threshold"])
            for n in reversed(found)
            if n["kind"] == "budget_threshold"
        ]


def test_80_and_100_percent_of_a_time_budget_are_told_once_to_admins_owners_and_managers(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    world = World(api, db, budget_seconds=10 * HOUR)
    world.track(7)
    assert world.alerts(qapi) == []
    world.track(1.5)  # 85 %
    assert world.alerts(qapi) == [("project", "time", 80)]
    world.track(1)  # 95 %
    assert world.alerts(qapi) == [("project", "time", 80)]
    world.track(0.5)  # exactly 100 %
    assert world.alerts(qapi) == [("project", "time", 80), ("project", "time", 100)]
    world.track(2)
    both = [("project", "time", 80), ("project", "time", 100)]
    assert world.alerts(qapi, world.admin) == both
    assert world.alerts(qapi, world.project_manager) == both
    assert world.alerts(qapi, world.manager) == []  # a manager, not on this project
    assert world.alerts(qapi, world.member) == []
    assert world.alerts(qapi, world.project_member) == []  # on the project, not a manager

    newest = inbox(qapi, world.org.owner, world.token)[0]
    assert newest["title"] == "Apollo reached 100 % of its time budget"
    assert newest["body"] == (
        "The project Apollo has used 10.0 h of its 10.0 h time budget (100 %)."
    )
    assert newest["data"] == {
        "subject": "project",
        "subject_id": world.project_id,
        "project_id": world.project_id,
        "task_id": None,
        "metric": "time",
        "threshold": 100,
        "used": 10 * HOUR,
        "budget": 10 * HOUR,
        "generation": 0,
    }


def test_falling_back_below_and_crossing_again_is_told_again(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    world = World(api, db, budget_seconds=10 * HOUR)
    world.track(5)
    extra = world.track(3.5)  # 85 %
    assert world.alerts(qapi) == [("project", "time", 80)]
    world.call("DELETE", f"/time-entries/{extra}")  # 50 %: below again
    assert world.alerts(qapi) == [("project", "time", 80)]
    world.track(3.5)  # 85 % again: a new crossing
    assert world.alerts(qapi) == [("project", "time", 80)] * 2

    # A budget change: raised above the use, then lowered below it.
    world.call("PATCH", f"/projects/{world.project_id}", {"budget_seconds": 20 * HOUR})
    assert len(world.alerts(qapi)) == 2
    world.call("PATCH", f"/projects/{world.project_id}", {"budget_seconds": 8 * HOUR})
    # Both thresholds crossed at once: the highest is told.
    assert world.alerts(qapi) == [("project", "time", 80)] * 2 + [("project", "time", 100)]
    generations = [
        (row["data"]["threshold"], row["data"]["generation"])
        for row in notification_rows(db, world.org.owner.id, "budget_threshold")
    ]
    assert generations == [(80, 0), (80, 1), (100, 0)]


def test_money_budgets_of_projects_and_time_budgets_of_tasks(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    world = World(api, db, hourly_rate=10000, budget_amount=100000)  # 1,000.00 at 100.00/h
    task = world.call(
        "POST", f"/projects/{world.project_id}/tasks", {"name": "Design", "budget_seconds": HOUR}
    ).json()["data"]["id"]
    world.track(8, task_id=task)  # 800.00 of 1,000.00; the task 8 h of 1 h
    assert sorted(world.alerts(qapi)) == [("project", "money", 80), ("task", "time", 100)]
    world.track(1, billable=False)  # time, but no money
    world.track(2)  # 1,000.00 reached... and passed
    assert sorted(world.alerts(qapi)) == [
        ("project", "money", 80),
        ("project", "money", 100),
        ("task", "time", 100),
    ]
    by_subject = {
        (n["data"]["subject"], n["data"]["threshold"]): n
        for n in inbox(qapi, world.org.owner, world.token)
    }
    assert by_subject[("project", 100)]["body"] == (
        "The project Apollo has used 1000.00 EUR of its 1000.00 EUR money budget (100 %)."
    )
    assert by_subject[("task", 100)]["title"] == "Apollo / Design reached 100 % of its time budget"
    assert by_subject[("task", 100)]["data"]["task_id"] == task
    # A task's budget goes to its project's managers too.
    assert sorted(world.alerts(qapi, world.project_manager)) == sorted(world.alerts(qapi))
    assert world.alerts(qapi, world.manager) == []
    assert world.alerts(qapi, world.project_member) == []


def test_a_manager_hears_of_the_projects_they_are_on_while_they_manage_them(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    """Recipients are who they are when the threshold is crossed: a manager taken off the
    project, or made a plain member, hears nothing more; one put on it hears the next."""
    world = World(api, db, budget_seconds=10 * HOUR)
    world.call("DELETE", f"/projects/{world.project_id}/members/{world.project_manager.id}")
    world.call("PUT", f"/projects/{world.project_id}/members/{world.manager.id}")
    demoted = add_member(db, world.org, "manager")
    world.call("PUT", f"/projects/{world.project_id}/members/{demoted.id}")
    world.call("PATCH", f"/members/{demoted.id}", {"role": "member"})
    world.track(8.5)
    assert world.alerts(qapi) == [("project", "time", 80)]
    assert world.alerts(qapi, world.manager) == [("project", "time", 80)]
    assert world.alerts(qapi, world.project_manager) == []
    assert world.alerts(qapi, demoted) == []
    [row] = notification_rows(db, world.manager.id, "budget_threshold")
    assert row["dedup_key"].endswith(f":{world.manager.id}")


def test_the_check_waits_for_the_entries_projection_it_reads(api: httpx.Client, db: Engine) -> None:
    """Without a background projector: the notifications projection advances first, while
    the project stats it reads do not hold the new entries yet."""
    world = World(api, db, budget_seconds=HOUR)
    world.track(0.9)
    # A projector thread of an earlier test may be finishing, and a transaction open
    # anywhere in the cluster holds the watermark back for a moment: wait, don't flake.
    deadline = time.monotonic() + 60
    while not notification_rows(db, world.org.owner.id, "budget_threshold"):
        assert time.monotonic() < deadline, "the notifications projection never advanced"
        advance(sessions(db), NotificationsProjection(notify=create_notifications))
        time.sleep(0.05)
    [row] = notification_rows(db, world.org.owner.id, "budget_threshold")
    assert row["data"]["used"] == int(0.9 * HOUR)
    with db.connect() as conn:
        behind = conn.execute(
            text(
                "SELECT count(*) FROM changes c, projection_checkpoints p"
                " WHERE p.name = 'entries' AND (c.tx, c.id) > (p.tx, p.change_id)"
                " AND c.entity = 'time_entry' AND c.org_id = :o"
            ),
            {"o": world.org.id},
        ).scalar_one()
    assert behind == 0


def test_replayed_changes_tell_nothing_twice(
    api: httpx.Client, qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    world = World(api, db, budget_seconds=HOUR)
    world.track(2)
    assert world.alerts(qapi) == [("project", "time", 100)]
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE projection_checkpoints SET tx = '0'::xid8, change_id = 0"
                " WHERE name = 'notifications'"
            )
        )
    drain(sessions(db))
    assert len(notification_rows(db, world.org.owner.id, "budget_threshold")) == 1


def _measure(used: int, budget: int | None) -> Measure:
    ids = uuid.uuid4(), uuid.uuid4()
    return Measure(ids[0], "project", ids[1], "P", "time", used, budget, "EUR", ids[1])


def test_evaluate_starts_a_new_generation_when_a_subject_falls_below() -> None:
    measure = _measure(90, 100)
    key80, key100 = [(measure.org_id, measure.subject_id, "time", t) for t in (80, 100)]
    changed, crossing = evaluate(measure, {})
    assert changed == {key80: State(True, 0)}
    assert crossing is not None
    assert (crossing.threshold, crossing.generation) == (80, 0)

    below = _measure(10, 100)
    below = Measure(
        **{**below.__dict__, "org_id": measure.org_id, "subject_id": measure.subject_id}
    )
    changed, crossing = evaluate(below, {key80: State(True, 0)})
    assert (changed, crossing) == ({key80: State(False, 1)}, None)

    no_budget = Measure(**{**below.__dict__, "budget": None, "used": 10**9})
    changed, crossing = evaluate(no_budget, {key80: State(True, 3), key100: State(True, 0)})
    assert changed == {key80: State(False, 4), key100: State(False, 1)}
    assert crossing is None
