"""What a time entry refers to: its project, task and tags, checked and resolved.

The time_entries module injects `EntryReferenceService` (it never reads this module's
tables itself). Every lookup is scoped to the organization and to live rows, so another
organization's ids, or deleted ones, answer 404 exactly like unknown ids. The bulk variant
loads every referenced record with one query per kind, whatever the number of items.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import CTE, RowMapping
from sqlalchemy.orm import Session

from command_api.modules.projects.repository import (
    NEW_ENTRY_REFERENCES,
    ProjectRef,
    ProjectsRepository,
    TaskRef,
)
from shared.errors import BusinessRuleError, EvoTrackError, NotFoundError

# (user_id, project_id, task_id, tag_ids)
ReferenceItem = tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None, Sequence[uuid.UUID]]


@dataclass(frozen=True)
class EntryReferences:
    project_id: uuid.UUID | None
    project_billable: bool | None  # None when no project
    project_rate_amount: int | None  # projects.hourly_rate_amount
    project_member_rate_amount: int | None  # project_members.hourly_rate_amount for (project, user)
    task_id: uuid.UUID | None
    tag_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class _Catalog:
    """The live records of one organization that a batch of items refers to."""

    tasks: dict[uuid.UUID, TaskRef]
    projects: dict[uuid.UUID, ProjectRef]
    member_rates: dict[tuple[uuid.UUID, uuid.UUID], int]  # links with a rate of their own
    tag_ids: frozenset[uuid.UUID]


def _not_found(entity: str, identifier: uuid.UUID, field: str) -> NotFoundError:
    error = NotFoundError.for_entity(entity, identifier)
    error.details = {"field": field}
    return error


def _project_of(item: ReferenceItem, tasks: dict[uuid.UUID, TaskRef]) -> uuid.UUID | None:
    """The item's project: the given one, else the project of its task."""
    _, project_id, task_id, _ = item
    if project_id is None and task_id is not None and task_id in tasks:
        return tasks[task_id].project_id
    return project_id


def _resolve_task(
    catalog: _Catalog, project_id: uuid.UUID | None, task_id: uuid.UUID | None
) -> TaskRef | None:
    if task_id is None:
        return None
    task = catalog.tasks.get(task_id)
    if task is None or (project_id is not None and task.project_id != project_id):
        raise _not_found("Task", task_id, "task_id")
    return task


def _resolve_project(catalog: _Catalog, project_id: uuid.UUID | None) -> ProjectRef | None:
    if project_id is None:
        return None
    project = catalog.projects.get(project_id)
    if project is None:
        raise _not_found("Project", project_id, "project_id")
    return project


def _resolve_tags(catalog: _Catalog, tag_ids: Sequence[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    unique = tuple(dict.fromkeys(tag_ids))
    for tag_id in unique:
        if tag_id not in catalog.tag_ids:
            raise _not_found("Tag", tag_id, "tag_ids")
    return unique


def _check_open(project: ProjectRef | None, task: TaskRef | None) -> None:
    """Archived projects and done tasks take no new entries."""
    if project is not None and project.archived:
        raise BusinessRuleError(
            f"Project '{project.name}' is archived", details={"field": "project_id"}
        )
    if task is not None and task.done:
        raise BusinessRuleError(f"Task '{task.name}' is done", details={"field": "task_id"})


def _resolve_item(catalog: _Catalog, item: ReferenceItem, for_new_entry: bool) -> EntryReferences:
    user_id, project_id, task_id, tag_ids = item
    task = _resolve_task(catalog, project_id, task_id)
    project = _resolve_project(catalog, task.project_id if task is not None else project_id)
    tags = _resolve_tags(catalog, tag_ids)
    if for_new_entry:
        _check_open(project, task)
    if project is None:
        return EntryReferences(None, None, None, None, None, tags)
    return EntryReferences(
        project_id=project.id,
        project_billable=project.billable,
        project_rate_amount=project.hourly_rate_amount,
        project_member_rate_amount=catalog.member_rates.get((project.id, user_id)),
        task_id=task.id if task is not None else None,
        tag_ids=tags,
    )


class EntryReferenceService:
    def __init__(self, session: Session) -> None:
        self.repo = ProjectsRepository(session)

    def resolve(
        self,
        org_id: uuid.UUID,
        user_id: uuid.UUID,
        project_id: uuid.UUID | None,
        task_id: uuid.UUID | None,
        tag_ids: Sequence[uuid.UUID],
        *,
        for_new_entry: bool,
    ) -> EntryReferences:
        """Check and resolve one entry's references.

        404 NotFoundError when the project, task or any tag is not a live record of org_id,
        or the task is not of that project (a task without project_id: take the task's
        project). When for_new_entry: archived project or done task -> 400 BusinessRuleError,
        and the project, task and tags are locked FOR SHARE until the transaction ends, so
        an archive, a "done" or a delete cannot commit between this check and the insert.
        """
        item: ReferenceItem = (user_id, project_id, task_id, tag_ids)
        catalog = self._load(org_id, [item], share_lock=for_new_entry)
        return _resolve_item(catalog, item, for_new_entry)

    @staticmethod
    def locked_for_new_entry() -> CTE:
        """`resolve(…, for_new_entry=True)` as a one-row CTE for the statement that writes
        the entry (one round trip for the checks, the locks and the writes). Its bind
        parameters: `org_id`, `user_id`, `project_id`, `task_id` and `tag_ids` (distinct,
        never NULL: an empty list for none). Its columns: what `checked` reads, and `ok`,
        true when `checked` raises nothing, plus `project_id`, `project_billable`,
        `project_hourly_rate_amount`, `member_rate` and `task_id` for the insert."""
        return NEW_ENTRY_REFERENCES

    @staticmethod
    def checked(row: RowMapping, item: ReferenceItem) -> EntryReferences:
        """The references `item` resolves to, read from a `locked_for_new_entry` row;
        raises what `resolve(…, for_new_entry=True)` would have raised."""
        tasks, projects, member_rates = {}, {}, {}
        if row["task_id"] is not None:
            task = TaskRef._make(row[f"task_{name}"] for name in TaskRef._fields)
            tasks[task.id] = task
        if row["project_id"] is not None:
            project = ProjectRef._make(row[f"project_{name}"] for name in ProjectRef._fields)
            projects[project.id] = project
            if row["member_rate"] is not None:
                member_rates[(project.id, item[0])] = row["member_rate"]
        catalog = _Catalog(tasks, projects, member_rates, frozenset(row["live_tag_ids"] or ()))
        return _resolve_item(catalog, item, True)

    def resolve_many(
        self, org_id: uuid.UUID, items: Sequence[ReferenceItem]
    ) -> list[EntryReferences | EvoTrackError]:
        """Bulk variant for new entries: per item, the references or the error it would raise.

        Items are (user_id, project_id, task_id, tag_ids). At most three queries whatever
        the number of items; the referenced rows are locked FOR SHARE as in `resolve`.
        """
        catalog = self._load(org_id, items, share_lock=True)
        results: list[EntryReferences | EvoTrackError] = []
        for item in items:
            try:
                results.append(_resolve_item(catalog, item, True))
            except EvoTrackError as error:
                results.append(error)
        return results

    def live_tag_ids(
        self, org_id: uuid.UUID, tag_ids: Sequence[uuid.UUID]
    ) -> tuple[uuid.UUID, ...]:
        """The tags among `tag_ids` that are live records of org_id, in the given order."""
        live = self.repo.live_tag_ids(org_id, tag_ids)
        return tuple(tag_id for tag_id in tag_ids if tag_id in live)

    def _load(
        self, org_id: uuid.UUID, items: Sequence[ReferenceItem], *, share_lock: bool
    ) -> _Catalog:
        task_ids = {task_id for _, _, task_id, _ in items if task_id is not None}
        tasks = {t.id: t for t in self.repo.live_tasks(org_id, task_ids, share_lock=share_lock)}
        project_ids = {pid for pid in (_project_of(item, tasks) for item in items) if pid}
        user_ids = {item[0] for item in items}
        projects, member_rates = self.repo.live_projects(
            org_id, project_ids, user_ids, share_lock=share_lock
        )
        tag_ids = {tag_id for *_, tags in items for tag_id in tags}
        live_tags = frozenset(self.repo.live_tag_ids(org_id, tag_ids, share_lock=share_lock))
        return _Catalog(tasks, {p.id: p for p in projects}, member_rates, live_tags)
