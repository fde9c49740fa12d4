"""Commands on clients, projects, project members, tasks and tags.

Every write appends a change row whose payload carries the old and the new values that
projections group by or display (names included: projections denormalize them).
Names are unique per organization among live records, case-insensitively; the database
enforces it (partial unique indexes) and a violation becomes a 409. Updates and deletes
lock the record before reading its old values, so the change row matches what commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from command_api.conditional import ANY_VERSION, IfMatch, ensure_version
from command_api.modules.projects.models import Client, Project, Tag, Task
from command_api.modules.projects.repository import ProjectsRepository
from command_api.modules.projects.schemas import (
    ClientCreate,
    ClientRead,
    ClientUpdate,
    ProjectCreate,
    ProjectRead,
    ProjectUpdate,
    TagCreate,
    TagRead,
    TagUpdate,
    TaskCreate,
    TaskRead,
    TaskUpdate,
)
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.errors import AlreadyExistsError, ConflictError, NotFoundError

UNIQUE_VIOLATION = "23505"
# JSON field -> column, where they differ (money is in minor units: `_amount`).
_COLUMNS = {"hourly_rate": "hourly_rate_amount"}
# A concurrent DELETE can remove a project member between our insert and our lock.
_UPSERT_ATTEMPTS = 3

Named = Client | Project | Tag


@dataclass(frozen=True)
class ProjectMemberView:
    project_id: uuid.UUID
    user_id: uuid.UUID
    hourly_rate_amount: int | None


# --- Change payloads -------------------------------------------------------------------


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def client_snapshot(client: Client) -> dict[str, Any]:
    return {"name": client.name, "archived": client.archived}


def project_snapshot(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "client_id": _id(project.client_id),
        "color": project.color,
        "billable": project.billable,
        "hourly_rate_amount": project.hourly_rate_amount,
        "budget_seconds": project.budget_seconds,
        "budget_amount": project.budget_amount,
        "archived": project.archived,
    }


def task_snapshot(task: Task) -> dict[str, Any]:
    return {
        "project_id": str(task.project_id),
        "name": task.name,
        "budget_seconds": task.budget_seconds,
        "done": task.done,
    }


def tag_snapshot(tag: Tag) -> dict[str, Any]:
    return {"name": tag.name}


def member_snapshot(member: ProjectMemberView) -> dict[str, Any]:
    return {
        "project_id": str(member.project_id),
        "user_id": str(member.user_id),
        "hourly_rate_amount": member.hourly_rate_amount,
    }


def _columns(values: dict[str, Any]) -> dict[str, Any]:
    return {_COLUMNS.get(field, field): value for field, value in values.items()}


def _assign(record: object, values: dict[str, Any]) -> bool:
    """Set the values that differ; true when anything changed."""
    changed = False
    for column, value in values.items():
        if getattr(record, column) != value:
            setattr(record, column, value)
            changed = True
    return changed


def _op(old: dict[str, Any] | None, new: dict[str, Any] | None) -> ChangeOp:
    if old is None:
        return ChangeOp.CREATED
    return ChangeOp.DELETED if new is None else ChangeOp.UPDATED


def _is_unique_violation(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION


Record = TypeVar("Record", Client, Project, Task, Tag)


def _existing(
    record: Record | None,
    entity: str,
    identifier: uuid.UUID,
    condition: IfMatch,
    shown: type[BaseModel],
) -> Record:
    """The record looked up: 404 when there is none, 412 when `If-Match` names another
    version."""
    if record is None:
        raise NotFoundError.for_entity(entity, identifier)
    ensure_version(condition, record, shown, entity)
    return record


class ProjectsService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = ProjectsRepository(session)

    # --- Shared steps ------------------------------------------------------------------

    def _record(
        self,
        entity: str,
        entity_id: uuid.UUID,
        org_id: uuid.UUID,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        record_changes(
            self.session,
            [ChangeRecord(entity, entity_id, _op(old, new), org_id, {"old": old, "new": new})],
        )

    def _save_named(self, record: Named, label: str) -> None:
        """Flush a record with a unique live name; a duplicate is a 409."""
        name = record.name
        try:
            self.repo.save(record)
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise AlreadyExistsError(
                    f"A {label} named '{name}' already exists in this organization"
                ) from exc
            raise

    def _soft_delete(self, record: Client | Project | Task | Tag) -> None:
        record.deleted_at = datetime.now(UTC)
        self.repo.save(record)

    # --- Clients -----------------------------------------------------------------------

    def _client(
        self,
        org_id: uuid.UUID,
        client_id: uuid.UUID,
        *,
        lock: bool = False,
        condition: IfMatch = ANY_VERSION,
    ) -> Client:
        record = self.repo.get_client(org_id, client_id, lock=lock)
        return _existing(record, "Client", client_id, condition, ClientRead)

    def create_client(self, org_id: uuid.UUID, data: ClientCreate) -> Client:
        client = Client(id=uuid.uuid4(), org_id=org_id, name=data.name, archived=False)
        self._save_named(client, "client")
        self._record("client", client.id, org_id, None, client_snapshot(client))
        return client

    def update_client(
        self,
        org_id: uuid.UUID,
        client_id: uuid.UUID,
        data: ClientUpdate,
        condition: IfMatch = ANY_VERSION,
    ) -> Client:
        client = self._client(org_id, client_id, lock=True, condition=condition)
        old = client_snapshot(client)
        if _assign(client, data.model_dump(exclude_unset=True)):
            self._save_named(client, "client")
            self._record("client", client.id, org_id, old, client_snapshot(client))
        return client

    def delete_client(
        self, org_id: uuid.UUID, client_id: uuid.UUID, condition: IfMatch = ANY_VERSION
    ) -> None:
        """Soft delete. Projects keep their client_id: past reports still name the client."""
        client = self._client(org_id, client_id, lock=True, condition=condition)
        old = client_snapshot(client)
        self._soft_delete(client)
        self._record("client", client.id, org_id, old, None)

    # --- Projects ----------------------------------------------------------------------

    def _project(
        self,
        org_id: uuid.UUID,
        project_id: uuid.UUID,
        *,
        lock: bool = False,
        condition: IfMatch = ANY_VERSION,
    ) -> Project:
        record = self.repo.get_project(org_id, project_id, lock=lock)
        return _existing(record, "Project", project_id, condition, ProjectRead)

    def create_project(self, org_id: uuid.UUID, data: ProjectCreate) -> Project:
        if data.client_id is not None:
            self._client(org_id, data.client_id)
        project = Project(
            id=uuid.uuid4(), org_id=org_id, archived=False, **_columns(data.model_dump())
        )
        self._save_named(project, "project")
        self._record("project", project.id, org_id, None, project_snapshot(project))
        return project

    def update_project(
        self,
        org_id: uuid.UUID,
        project_id: uuid.UUID,
        data: ProjectUpdate,
        condition: IfMatch = ANY_VERSION,
    ) -> Project:
        project = self._project(org_id, project_id, lock=True, condition=condition)
        values = _columns(data.model_dump(exclude_unset=True))
        client_id = values.get("client_id")
        if client_id is not None and client_id != project.client_id:
            self._client(org_id, client_id)
        old = project_snapshot(project)
        if _assign(project, values):
            self._save_named(project, "project")
            self._record("project", project.id, org_id, old, project_snapshot(project))
        return project

    def delete_project(
        self, org_id: uuid.UUID, project_id: uuid.UUID, condition: IfMatch = ANY_VERSION
    ) -> None:
        """Soft delete; its tasks become unreachable with it."""
        project = self._project(org_id, project_id, lock=True, condition=condition)
        old = project_snapshot(project)
        self._soft_delete(project)
        self._record("project", project.id, org_id, old, None)

    # --- Project members ---------------------------------------------------------------

    def put_project_member(
        self, org_id: uuid.UUID, project_id: uuid.UUID, user_id: uuid.UUID, rate: int | None
    ) -> ProjectMemberView:
        """Add a member of the organization to the project, or set their rate on it."""
        self._project(org_id, project_id)
        if not self.repo.is_live_member(org_id, user_id):
            raise NotFoundError.for_entity("User", user_id)
        new = ProjectMemberView(project_id, user_id, rate)
        for _ in range(_UPSERT_ATTEMPTS):
            if self.repo.insert_project_member_if_absent(org_id, project_id, user_id, rate):
                self._record("project_member", project_id, org_id, None, member_snapshot(new))
                return new
            existing = self.repo.lock_project_member(project_id, user_id)
            if existing is not None:
                self._update_member_rate(
                    org_id, ProjectMemberView(project_id, user_id, existing[0]), new
                )
                return new
        raise ConflictError("The project member changed concurrently; retry")

    def _update_member_rate(
        self, org_id: uuid.UUID, old: ProjectMemberView, new: ProjectMemberView
    ) -> None:
        if old.hourly_rate_amount == new.hourly_rate_amount:
            return
        self.repo.set_project_member_rate(new.project_id, new.user_id, new.hourly_rate_amount)
        self._record(
            "project_member", new.project_id, org_id, member_snapshot(old), member_snapshot(new)
        )

    def remove_project_member(
        self, org_id: uuid.UUID, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        """Hard delete of the link (a link table: history lives in the change log)."""
        self._project(org_id, project_id)
        removed = self.repo.delete_project_member(project_id, user_id)
        if removed is None:
            raise NotFoundError(f"User '{user_id}' is not a member of project '{project_id}'")
        old = ProjectMemberView(project_id, user_id, removed[0])
        self._record("project_member", project_id, org_id, member_snapshot(old), None)

    # --- Tasks -------------------------------------------------------------------------

    def _task(
        self,
        org_id: uuid.UUID,
        project_id: uuid.UUID,
        task_id: uuid.UUID,
        *,
        lock: bool = False,
        condition: IfMatch = ANY_VERSION,
    ) -> Task:
        record = self.repo.get_task(org_id, project_id, task_id, lock=lock)
        return _existing(record, "Task", task_id, condition, TaskRead)

    def create_task(self, org_id: uuid.UUID, project_id: uuid.UUID, data: TaskCreate) -> Task:
        self._project(org_id, project_id)
        task = Task(
            id=uuid.uuid4(),
            org_id=org_id,
            project_id=project_id,
            name=data.name,
            budget_seconds=data.budget_seconds,
            done=False,
        )
        self.repo.save(task)
        self._record("task", task.id, org_id, None, task_snapshot(task))
        return task

    def update_task(
        self,
        org_id: uuid.UUID,
        project_id: uuid.UUID,
        task_id: uuid.UUID,
        data: TaskUpdate,
        condition: IfMatch = ANY_VERSION,
    ) -> Task:
        task = self._task(org_id, project_id, task_id, lock=True, condition=condition)
        old = task_snapshot(task)
        if _assign(task, data.model_dump(exclude_unset=True)):
            self.repo.save(task)
            self._record("task", task.id, org_id, old, task_snapshot(task))
        return task

    def delete_task(
        self,
        org_id: uuid.UUID,
        project_id: uuid.UUID,
        task_id: uuid.UUID,
        condition: IfMatch = ANY_VERSION,
    ) -> None:
        task = self._task(org_id, project_id, task_id, lock=True, condition=condition)
        old = task_snapshot(task)
        self._soft_delete(task)
        self._record("task", task.id, org_id, old, None)

    # --- Tags --------------------------------------------------------------------------

    def _tag(
        self,
        org_id: uuid.UUID,
        tag_id: uuid.UUID,
        *,
        lock: bool = False,
        condition: IfMatch = ANY_VERSION,
    ) -> Tag:
        record = self.repo.get_tag(org_id, tag_id, lock=lock)
        return _existing(record, "Tag", tag_id, condition, TagRead)

    def create_tag(self, org_id: uuid.UUID, data: TagCreate) -> Tag:
        tag = Tag(id=uuid.uuid4(), org_id=org_id, name=data.name)
        self._save_named(tag, "tag")
        self._record("tag", tag.id, org_id, None, tag_snapshot(tag))
        return tag

    def update_tag(
        self,
        org_id: uuid.UUID,
        tag_id: uuid.UUID,
        data: TagUpdate,
        condition: IfMatch = ANY_VERSION,
    ) -> Tag:
        tag = self._tag(org_id, tag_id, lock=True, condition=condition)
        old = tag_snapshot(tag)
        if _assign(tag, data.model_dump(exclude_unset=True)):
            self._save_named(tag, "tag")
            self._record("tag", tag.id, org_id, old, tag_snapshot(tag))
        return tag

    def delete_tag(
        self, org_id: uuid.UUID, tag_id: uuid.UUID, condition: IfMatch = ANY_VERSION
    ) -> None:
        tag = self._tag(org_id, tag_id, lock=True, condition=condition)
        old = tag_snapshot(tag)
        self._soft_delete(tag)
        self._record("tag", tag.id, org_id, old, None)
