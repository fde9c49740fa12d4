"""SQL of the projects module. Every lookup is scoped to one organization and to live rows."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    CTE,
    Row,
    Select,
    Uuid,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Membership
from command_api.modules.projects.models import Client, Project, ProjectMember, Tag, Task
from shared.db import UUIDS, uuid_array

Record = TypeVar("Record", Client, Project, Task, Tag)
Selected = TypeVar("Selected", bound=Select[Any])


class ProjectRef(NamedTuple):
    """What an entry's checks and rate need of its project."""

    id: uuid.UUID
    name: str
    billable: bool
    archived: bool
    hourly_rate_amount: int | None


class TaskRef(NamedTuple):
    """What an entry's checks need of its task."""

    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    done: bool


def _projects_with_rates() -> Select[Any]:
    """`ProjectRef`'s columns of the live projects `:ids` of `:org_id`, each with the links to
    the users `:user_ids` that have a rate of their own (user_id and rate, else NULLs).
    Built once on the tables: its cache key is computed once, and no ORM layer runs."""
    projects, members = Project.__table__, ProjectMember.__table__
    link = and_(
        members.c.project_id == projects.c.id,
        members.c.user_id == any_(bindparam("user_ids", type_=UUIDS)),
        members.c.hourly_rate_amount.is_not(None),
    )
    return (
        select(
            *(projects.c[name] for name in ProjectRef._fields),
            members.c.user_id,
            members.c.hourly_rate_amount,
        )
        .select_from(projects.outerjoin(members, link))
        .where(
            projects.c.id == any_(bindparam("ids", type_=UUIDS)),
            projects.c.org_id == bindparam("org_id"),
            projects.c.deleted_at.is_(None),
        )
    )


_PROJECT_FIELDS = len(ProjectRef._fields)
_PROJECTS_WITH_RATES = _projects_with_rates()
# FOR SHARE of the projects only: the links are read, never locked.
_LOCKED_PROJECTS_WITH_RATES = _PROJECTS_WITH_RATES.with_for_update(read=True, of=Project.__table__)


def _new_entry_references() -> CTE:
    """One new entry's references as a one-row CTE, for the statement that writes the entry:
    the task (`:task_id`), the project (`:project_id`, else the task's) with the own rate of
    its link to `:user_id`, and the live tags among `:tag_ids`, all of `:org_id` and live,
    locked FOR SHARE as `EntryReferenceService.resolve` locks them for a new entry. Columns:
    `TaskRef`'s and `ProjectRef`'s fields (prefixed `task_`, `project_`; NULL when absent),
    `member_rate`, `live_tag_ids` and `ok`: every reference is live, of the organization
    and open (no archived project, no done task), and the task is of the project."""
    org_id = bindparam("org_id", type_=Uuid)
    task_id, project_id = bindparam("task_id", type_=Uuid), bindparam("project_id", type_=Uuid)
    tag_ids = bindparam("tag_ids", type_=UUIDS)
    tasks, projects, members, tags = (
        Task.__table__, Project.__table__, ProjectMember.__table__, Tag.__table__
    )  # fmt: skip
    task = (
        select(*(tasks.c[name] for name in TaskRef._fields))
        .where(tasks.c.id == task_id, tasks.c.org_id == org_id, tasks.c.deleted_at.is_(None))
        .with_for_update(read=True)
        .cte("ref_task")
    )
    own_rate = and_(
        members.c.project_id == projects.c.id,
        members.c.user_id == bindparam("user_id", type_=Uuid),
        members.c.hourly_rate_amount.is_not(None),
    )
    project = (
        select(
            *(projects.c[name] for name in ProjectRef._fields),
            members.c.hourly_rate_amount.label("member_rate"),
        )
        .select_from(projects.outerjoin(members, own_rate))
        .where(
            projects.c.id == func.coalesce(select(task.c.project_id).scalar_subquery(), project_id),
            projects.c.org_id == org_id,
            projects.c.deleted_at.is_(None),
        )
        .with_for_update(read=True, of=projects)
        .cte("ref_project")
    )
    live_tags = (
        select(tags.c.id)
        .where(tags.c.id == any_(tag_ids), tags.c.org_id == org_id, tags.c.deleted_at.is_(None))
        .with_for_update(read=True)
        .cte("ref_tags")
    )
    task_ok = or_(
        task_id.is_(None),
        and_(
            task.c.id.is_not(None),
            or_(project_id.is_(None), task.c.project_id == project_id),
            task.c.done.is_(False),
        ),
    )
    project_ok = or_(
        and_(task_id.is_(None), project_id.is_(None)),
        and_(project.c.id.is_not(None), project.c.archived.is_(False)),
    )
    tags_ok = (
        func.cardinality(tag_ids) == select(func.count()).select_from(live_tags).scalar_subquery()
    )
    one_row = select(literal(1).label("one")).subquery("one_row")
    return (
        select(
            *(task.c[name].label(f"task_{name}") for name in TaskRef._fields),
            *(project.c[name].label(f"project_{name}") for name in ProjectRef._fields),
            project.c.member_rate,
            select(func.array_agg(live_tags.c.id)).scalar_subquery().label("live_tag_ids"),
            and_(task_ok, project_ok, tags_ok).label("ok"),
        )
        .select_from(one_row.outerjoin(task, true()).outerjoin(project, true()))
        .cte("refs")
    )


# Built once (see `_new_entry_references`).
NEW_ENTRY_REFERENCES = _new_entry_references()


def _locked(statement: Selected, model: type[Client | Project | Task | Tag]) -> Selected:
    """Lock the record to change and re-read it: a change row's `old` is then what a
    concurrent command committed, never a stale copy. FOR NO KEY UPDATE is the lock the
    UPDATE takes anyway (FOR UPDATE would also queue every foreign-key check on the row)."""
    return statement.with_for_update(key_share=True, of=model).execution_options(
        populate_existing=True
    )


class ProjectsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # --- Writes ------------------------------------------------------------------------

    def save(self, record: Client | Project | Task | Tag) -> None:
        """Flush inside a savepoint, so that a unique violation leaves the transaction usable."""
        with self.session.begin_nested():
            self.session.add(record)
            self.session.flush()

    # --- Single live records of one organization ----------------------------------------

    def _live(
        self, model: type[Record], org_id: uuid.UUID, record_id: uuid.UUID, *, lock: bool
    ) -> Record | None:
        statement = select(model).where(
            model.id == record_id, model.org_id == org_id, model.deleted_at.is_(None)
        )
        return self.session.execute(
            _locked(statement, model) if lock else statement
        ).scalar_one_or_none()

    def get_client(
        self, org_id: uuid.UUID, client_id: uuid.UUID, *, lock: bool = False
    ) -> Client | None:
        return self._live(Client, org_id, client_id, lock=lock)

    def get_project(
        self, org_id: uuid.UUID, project_id: uuid.UUID, *, lock: bool = False
    ) -> Project | None:
        return self._live(Project, org_id, project_id, lock=lock)

    def get_tag(self, org_id: uuid.UUID, tag_id: uuid.UUID, *, lock: bool = False) -> Tag | None:
        return self._live(Tag, org_id, tag_id, lock=lock)

    def get_task(
        self, org_id: uuid.UUID, project_id: uuid.UUID, task_id: uuid.UUID, *, lock: bool = False
    ) -> Task | None:
        """A live task of a live project (`lock` locks the task row only)."""
        statement = (
            select(Task)
            .join(Project, Project.id == Task.project_id)
            .where(
                Task.id == task_id,
                Task.project_id == project_id,
                Task.org_id == org_id,
                Task.deleted_at.is_(None),
                Project.deleted_at.is_(None),
            )
        )
        return self.session.execute(
            _locked(statement, Task) if lock else statement
        ).scalar_one_or_none()

    # --- Project members ----------------------------------------------------------------

    def is_live_member(self, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        return bool(
            self.session.execute(
                select(
                    exists().where(
                        Membership.org_id == org_id,
                        Membership.user_id == user_id,
                        Membership.deleted_at.is_(None),
                    )
                )
            ).scalar_one()
        )

    def insert_project_member_if_absent(
        self, org_id: uuid.UUID, project_id: uuid.UUID, user_id: uuid.UUID, rate: int | None
    ) -> bool:
        """Insert the link unless it exists; true when this call inserted it."""
        inserted = self.session.execute(
            insert(ProjectMember)
            .values(org_id=org_id, project_id=project_id, user_id=user_id, hourly_rate_amount=rate)
            .on_conflict_do_nothing(
                index_elements=[ProjectMember.project_id, ProjectMember.user_id]
            )
            .returning(ProjectMember.project_id)
        ).first()
        return inserted is not None

    def lock_project_member(
        self, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[int | None] | None:
        """Lock an existing link: `(rate,)`, or None when there is none."""
        row = self.session.execute(
            select(ProjectMember.hourly_rate_amount)
            .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
            .with_for_update()
        ).first()
        return None if row is None else (row[0],)

    def set_project_member_rate(
        self, project_id: uuid.UUID, user_id: uuid.UUID, rate: int | None
    ) -> None:
        self.session.execute(
            update(ProjectMember)
            .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
            .values(hourly_rate_amount=rate)
        )

    def delete_project_member(
        self, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[int | None] | None:
        """Remove the link: `(its rate,)`, or None when there was none."""
        row = self.session.execute(
            delete(ProjectMember)
            .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
            .returning(ProjectMember.hourly_rate_amount)
        ).first()
        return None if row is None else (row[0],)

    # --- Batch loads for entry references (one query per kind) -------------------------

    def live_projects(
        self,
        org_id: uuid.UUID,
        ids: Collection[uuid.UUID],
        user_ids: Collection[uuid.UUID],
        *,
        share_lock: bool = False,
    ) -> tuple[list[ProjectRef], dict[tuple[uuid.UUID, uuid.UUID], int]]:
        """The live projects among `ids`, and the own rates of their links to `user_ids`
        (a link without a rate of its own, most of them, is absent), in one query.
        `share_lock` takes FOR SHARE on the projects (see `_live_many`)."""
        if not ids:
            return [], {}
        statement = _LOCKED_PROJECTS_WITH_RATES if share_lock else _PROJECTS_WITH_RATES
        rows = self.session.execute(
            statement, {"org_id": org_id, "ids": list(ids), "user_ids": list(user_ids)}
        )
        projects: dict[uuid.UUID, ProjectRef] = {}
        rates: dict[tuple[uuid.UUID, uuid.UUID], int] = {}
        for row in rows:
            project = ProjectRef._make(row[:_PROJECT_FIELDS])
            projects.setdefault(project.id, project)
            user_id, rate = row[_PROJECT_FIELDS:]
            if user_id is not None:
                rates[(project.id, user_id)] = rate
        return list(projects.values()), rates

    def live_tasks(
        self, org_id: uuid.UUID, ids: Collection[uuid.UUID], *, share_lock: bool = False
    ) -> list[TaskRef]:
        rows = self._live_many(Task, TaskRef._fields, org_id, ids, share_lock)
        return [TaskRef._make(row) for row in rows]

    def live_tag_ids(
        self, org_id: uuid.UUID, ids: Collection[uuid.UUID], *, share_lock: bool = False
    ) -> set[uuid.UUID]:
        if not ids:
            return set()
        statement = select(Tag.id).where(
            Tag.id == any_(uuid_array(ids)), Tag.org_id == org_id, Tag.deleted_at.is_(None)
        )
        if share_lock:
            statement = statement.with_for_update(read=True)
        return set(self.session.execute(statement).scalars())

    def _live_many(
        self,
        model: type[Task],
        fields: tuple[str, ...],
        org_id: uuid.UUID,
        ids: Collection[uuid.UUID],
        share_lock: bool,
    ) -> Sequence[Row[Any]]:
        """`fields` of the live records among `ids`, as rows: an entry reads a few of them,
        and ORM objects for every record of a 1000-entry bulk cost ~5 ms to build and read.
        `share_lock` takes FOR SHARE: the rows cannot be archived, closed or deleted until
        this transaction ends (a change already waiting is seen once it commits)."""
        if not ids:
            return []
        statement = select(*(getattr(model, field) for field in fields)).where(
            model.id == any_(uuid_array(ids)), model.org_id == org_id, model.deleted_at.is_(None)
        )
        if share_lock:
            statement = statement.with_for_update(read=True)
        return self.session.execute(statement).all()
