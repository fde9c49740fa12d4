"""SQL of the projects module. Every lookup is scoped to one organization and to live rows."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Row, Select, any_, delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Membership
from command_api.modules.projects.models import Client, Project, ProjectMember, Tag, Task
from shared.db import uuid_array

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
        self, org_id: uuid.UUID, ids: Collection[uuid.UUID], *, share_lock: bool = False
    ) -> list[ProjectRef]:
        rows = self._live_many(Project, ProjectRef._fields, org_id, ids, share_lock)
        return [ProjectRef._make(row) for row in rows]

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
        model: type[Project | Task],
        fields: tuple[str, ...],
        org_id: uuid.UUID,
        ids: Collection[uuid.UUID],
        share_lock: bool,
    ) -> Sequence[Row[Any]]:
        """`fields` of the live records among `ids`, as rows: an entry reads a few of them,
        and ORM objects for every project of a 1000-entry bulk cost ~5 ms to build and read.
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

    def project_member_rates(
        self, pairs: Collection[tuple[uuid.UUID, uuid.UUID]]
    ) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
        """The own rates of the (project_id, user_id) links among `pairs`; a link without
        a rate of its own (most of them) is absent, as it sets no rate."""
        if not pairs:
            return {}
        # Every such link between the projects and the users named (at most their product,
        # and a bulk names few of each), filtered here: `(project, user) IN (…)` with one
        # pair per item was compiled anew for each batch, 14 % of a 1000-entry bulk create.
        projects = {project_id for project_id, _ in pairs}
        users = {user_id for _, user_id in pairs}
        rows = self.session.execute(
            select(
                ProjectMember.project_id, ProjectMember.user_id, ProjectMember.hourly_rate_amount
            ).where(
                ProjectMember.project_id == any_(uuid_array(projects)),
                ProjectMember.user_id == any_(uuid_array(users)),
                ProjectMember.hourly_rate_amount.is_not(None),
            )
        )
        wanted = set(pairs)
        return {
            (project_id, user_id): rate
            for project_id, user_id, rate in rows
            if rate is not None and (project_id, user_id) in wanted
        }
