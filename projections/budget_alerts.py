"""Budget thresholds, detected from the change log by the notifications projection.

A project (time and money budgets) or a task (time budget) that reaches 80 % or 100 % of a
budget is announced once to the organization's admins and owners and to the project's
managers: members whose role is `manager` and who are members of that project (a task's
project for a task). Plain members are never told.

Each (subject, metric, threshold) has a state in `budget_alert_states`: whether it is
reached, and a generation that grows each time the subject falls back below (an entry
deleted or moved, a budget raised or removed). The generation is part of the dedup key:
crossing the same threshold again after falling back is a new notification, while a
change applied twice, or the state seen again by a later change, is not.

The usage comes from the entries projection's project and task stats. That projection
advances on its own schedule, so before reading them this projection makes sure it has
passed the changes of the batch in hand (see `catch_up`). Budgets are read from the
write side: they are current, and a later change re-evaluates them anyway. When one
evaluation crosses both thresholds (a long entry), only the highest is announced.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    Uuid,
    and_,
    column,
    exists,
    func,
    or_,
    select,
    values,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Membership, Organization, Role
from command_api.modules.projects.models import Project, ProjectMember, Task
from command_api.modules.time_entries.models import TimeEntry
from projections.entries import EntriesProjection
from projections.models import budget_alert_states, proj_project_stats, proj_task_stats
from projections.projection import IDS, ORGS, ChangeRow, Projection, among
from projections.runner import (
    DEFAULT_BATCH_SIZE,
    advance_one_batch,
    checkpoint_position,
    lock_projection,
)
from shared.notifications import NotificationDraft, NotificationKind

THRESHOLDS = (80, 100)
TIME, MONEY = "time", "money"
PROJECT, TASK = "project", "task"

UPSTREAM: Projection = EntriesProjection()


# --- What a batch touched ----------------------------------------------------------------


@dataclass
class Subjects:
    project_ids: set[uuid.UUID] = field(default_factory=set)
    task_ids: set[uuid.UUID] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.project_ids or self.task_ids)

    def add_entry_values(self, entry: Any) -> None:
        if not isinstance(entry, dict):
            return
        if entry.get("project_id"):
            self.project_ids.add(uuid.UUID(str(entry["project_id"])))
        if entry.get("task_id"):
            self.task_ids.add(uuid.UUID(str(entry["task_id"])))


def touched_subjects(session: Session, changes: Sequence[ChangeRow]) -> Subjects:
    """Projects and tasks whose usage or budget a batch may have changed: those of the
    entries' old and new values (the write side's current row too, for changes logged
    without them), and the projects and tasks changed themselves."""
    subjects = Subjects()
    entry_ids = []
    for change in changes:
        if change.entity == "time_entry":
            entry_ids.append(change.entity_id)
            subjects.add_entry_values((change.payload or {}).get("old"))
            subjects.add_entry_values((change.payload or {}).get("new"))
        elif change.entity == PROJECT:
            subjects.project_ids.add(uuid.UUID(str(change.entity_id)))
        elif change.entity == TASK:
            subjects.task_ids.add(uuid.UUID(str(change.entity_id)))
    if entry_ids:
        rows = session.execute(
            select(TimeEntry.project_id, TimeEntry.task_id).where(among(TimeEntry.id, IDS)),
            {"ids": entry_ids},
        ).mappings()
        for row in rows:
            subjects.add_entry_values(dict(row))
    return subjects


# --- The upstream projection ---------------------------------------------------------------


def catch_up(session: Session, upstream: Projection, position: tuple[int, int]) -> None:
    """Make sure `upstream` has applied every change up to `position` (tx, id).

    Its writer lock is taken (waiting for a batch another worker is applying); if it is
    still behind, its next batches are applied here, in this transaction, so its
    checkpoint commits with ours. The lock order is always this projection first, then
    the upstream one, and the upstream never waits for us: no deadlock."""
    lock_projection(session, upstream.name)
    while checkpoint_position(session, upstream.name) < position:
        result = advance_one_batch(session, upstream, DEFAULT_BATCH_SIZE)
        if result is None or result.locked_elsewhere:
            break


# --- Measures and states -------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One budget of one subject and how much of it is used."""

    org_id: uuid.UUID
    subject: str
    subject_id: uuid.UUID
    label: str
    metric: str
    used: int
    budget: int | None
    currency: str
    project_id: uuid.UUID

    def reached(self, threshold: int) -> bool:
        return self.budget is not None and self.used * 100 >= threshold * self.budget


def _live_org(org_id: SQLColumnExpression[uuid.UUID]) -> ColumnElement[bool]:
    return and_(Organization.id == org_id, Organization.deleted_at.is_(None))


# The projects in IDS with their budgets and what they used (from the entries projection).
_PROJECTS = (
    select(
        Project.id,
        Project.org_id,
        Project.name,
        Project.budget_seconds,
        Project.budget_amount,
        Organization.currency,
        func.coalesce(proj_project_stats.c.seconds, 0).label("seconds"),
        func.coalesce(proj_project_stats.c.amount, 0).label("amount"),
    )
    .join(Organization, _live_org(Project.org_id))
    .outerjoin(proj_project_stats, proj_project_stats.c.project_id == Project.id)
    .where(among(Project.id, IDS), Project.deleted_at.is_(None))
)
# The tasks in IDS, likewise.
_TASKS = (
    select(
        Task.id,
        Task.org_id,
        Task.project_id,
        Task.name,
        Project.name.label("project_name"),
        Task.budget_seconds,
        Organization.currency,
        func.coalesce(proj_task_stats.c.seconds, 0).label("seconds"),
    )
    .join(Project, and_(Project.id == Task.project_id, Project.deleted_at.is_(None)))
    .join(Organization, _live_org(Task.org_id))
    .outerjoin(proj_task_stats, proj_task_stats.c.task_id == Task.id)
    .where(among(Task.id, IDS), Task.deleted_at.is_(None))
)


def measures(session: Session, subjects: Subjects) -> list[Measure]:
    found: list[Measure] = []
    if subjects.project_ids:
        for p in session.execute(_PROJECTS, {"ids": list(subjects.project_ids)}):
            common = (p.org_id, PROJECT, p.id, str(p.name))
            found.append(Measure(*common, TIME, p.seconds, p.budget_seconds, p.currency, p.id))
            found.append(Measure(*common, MONEY, p.amount, p.budget_amount, p.currency, p.id))
    if subjects.task_ids:
        for t in session.execute(_TASKS, {"ids": list(subjects.task_ids)}):
            label = f"{t.project_name} / {t.name}"
            found.append(
                Measure(
                    t.org_id, TASK, t.id, label, TIME, t.seconds, t.budget_seconds, t.currency,
                    t.project_id,
                )
            )  # fmt: skip
    return found


@dataclass(frozen=True)
class State:
    reached: bool = False
    generation: int = 0


StateKey = tuple[uuid.UUID, uuid.UUID, str, int]  # org, subject, metric, threshold


def _key(measure: Measure, threshold: int) -> StateKey:
    return (measure.org_id, measure.subject_id, measure.metric, threshold)


def load_states(session: Session, found: Sequence[Measure]) -> dict[StateKey, State]:
    states = budget_alert_states.c
    rows = session.execute(
        select(
            states.org_id,
            states.subject_id,
            states.metric,
            states.threshold,
            states.reached,
            states.generation,
        ).where(among(states.org_id, ORGS), among(states.subject_id, IDS)),
        {"orgs": list({m.org_id for m in found}), "ids": list({m.subject_id for m in found})},
    )
    return {
        (r.org_id, r.subject_id, r.metric, r.threshold): State(r.reached, r.generation)
        for r in rows
    }


@dataclass(frozen=True)
class Crossing:
    measure: Measure
    threshold: int
    generation: int


def evaluate(
    measure: Measure, states: dict[StateKey, State]
) -> tuple[dict[StateKey, State], Crossing | None]:
    """The states that change, and the crossing to announce (the highest one reached now).
    Falling below a threshold starts its next generation."""
    changed: dict[StateKey, State] = {}
    crossings = []
    for threshold in THRESHOLDS:
        key = _key(measure, threshold)
        old = states.get(key, State())
        if measure.reached(threshold) and not old.reached:
            changed[key] = State(True, old.generation)
            crossings.append(Crossing(measure, threshold, old.generation))
        elif not measure.reached(threshold) and old.reached:
            changed[key] = State(False, old.generation + 1)
    return changed, max(crossings, key=lambda c: c.threshold, default=None)


def save_states(session: Session, changed: dict[StateKey, State]) -> None:
    if not changed:
        return
    rows = [
        {
            "org_id": org_id,
            "subject_id": subject_id,
            "metric": metric,
            "threshold": threshold,
            "reached": state.reached,
            "generation": state.generation,
        }
        for (org_id, subject_id, metric, threshold), state in changed.items()
    ]
    upsert = insert(budget_alert_states).values(rows)
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=list(budget_alert_states.primary_key),
            set_={
                "reached": upsert.excluded.reached,
                "generation": upsert.excluded.generation,
                "updated_at": func.now(),
            },
        )
    )


# --- Notifications -------------------------------------------------------------------------


def _recipients_of(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> Select[Any]:
    """(org, project, user) of the members told about each (organization, project)."""
    subject = values(column("org_id", Uuid), column("project_id", Uuid), name="s").data(pairs)
    on_the_project = exists().where(
        ProjectMember.project_id == subject.c.project_id,
        ProjectMember.user_id == Membership.user_id,
        ProjectMember.org_id == subject.c.org_id,
    )
    return (
        select(subject.c.org_id, subject.c.project_id, Membership.user_id)
        .distinct()
        .join(
            Membership,
            and_(Membership.org_id == subject.c.org_id, Membership.deleted_at.is_(None)),
        )
        .where(
            or_(
                Membership.role.in_([Role.ADMIN, Role.OWNER]),
                and_(Membership.role == Role.MANAGER, on_the_project),
            )
        )
        .order_by(subject.c.org_id, subject.c.project_id, Membership.user_id)
    )


def _recipients(
    session: Session, crossings: Iterable[Crossing]
) -> dict[tuple[uuid.UUID, uuid.UUID], list[Any]]:
    """Who hears of each (organization, project): its admins and owners, and the
    managers who are members of the project."""
    pairs = sorted({(c.measure.org_id, c.measure.project_id) for c in crossings})
    rows = session.execute(_recipients_of(pairs))
    found: dict[tuple[uuid.UUID, uuid.UUID], list[Any]] = {}
    for org_id, project_id, user_id in rows:
        found.setdefault((org_id, project_id), []).append(user_id)
    return found


def _amount(measure: Measure, value: int) -> str:
    if measure.metric == TIME:
        return f"{value / 3600:.1f} h"
    return f"{value / 100:.2f} {measure.currency}"


def _draft(crossing: Crossing, user_id: uuid.UUID) -> NotificationDraft:
    m, threshold = crossing.measure, crossing.threshold
    budget = m.budget or 0
    percent = m.used * 100 // budget if budget else 0
    what = "time" if m.metric == TIME else "money"
    return NotificationDraft(
        org_id=m.org_id,
        user_id=user_id,
        kind=NotificationKind.BUDGET_THRESHOLD,
        dedup_key=(
            f"budget_threshold:{m.subject}:{m.subject_id}:{m.metric}:{threshold}"
            f":{crossing.generation}:{user_id}"
        ),
        title=f"{m.label} reached {threshold} % of its {what} budget",
        body=(
            f"The {m.subject} {m.label} has used {_amount(m, m.used)} of its"
            f" {_amount(m, budget)} {what} budget ({percent} %)."
        ),
        data={
            "subject": m.subject,
            "subject_id": str(m.subject_id),
            "project_id": str(m.project_id),
            "task_id": str(m.subject_id) if m.subject == TASK else None,
            "metric": m.metric,
            "threshold": threshold,
            "used": m.used,
            "budget": budget,
            "generation": crossing.generation,
        },
    )


def budget_threshold_drafts(
    session: Session, changes: Sequence[ChangeRow]
) -> list[NotificationDraft]:
    """The budget_threshold notifications a batch of changes brings about."""
    subjects = touched_subjects(session, changes)
    if not subjects:
        return []
    catch_up(session, UPSTREAM, max((c.tx, c.id) for c in changes))
    found = measures(session, subjects)
    states = load_states(session, found) if found else {}
    changed: dict[StateKey, State] = {}
    crossings = []
    for measure in found:
        measure_changes, crossing = evaluate(measure, states)
        changed.update(measure_changes)
        if crossing is not None:
            crossings.append(crossing)
    save_states(session, changed)
    if not crossings:
        return []
    recipients = _recipients(session, crossings)
    return [
        _draft(crossing, user_id)
        for crossing in crossings
        for user_id in recipients.get((crossing.measure.org_id, crossing.measure.project_id), [])
    ]
