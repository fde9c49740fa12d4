"""Response shapes of the catalog: me, organizations, members, teams, clients, projects,
tasks, tags and my running timer.

Money is in minor units; the JSON field `hourly_rate` is the column `hourly_rate_amount`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from query_api.schemas import ProjectRef, Ref, UserRef, UtcTimestamp
from shared.responses import Version

Row = Mapping[Any, Any]  # a result row: column name to value


class Role(StrEnum):
    """A member's role in an organization, from the least to the most it may do (the
    command API's `Role`: one schema in each document)."""

    MEMBER = "member"
    MANAGER = "manager"
    ADMIN = "admin"
    OWNER = "owner"


def budget_fraction(*used_and_budget: tuple[int, int | None]) -> float | None:
    """The larger fraction among the budgets that are set; None when none is."""
    fractions = [used / budget for used, budget in used_and_budget if budget]
    return max(fractions) if fractions else None


# --- Me and organizations ----------------------------------------------------------------


class MembershipRead(BaseModel):
    organization: Ref
    role: Role


class MeRead(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    timezone: str
    memberships: list[MembershipRead] = Field(description="Ordered by organization name")


class OrganizationRead(BaseModel):
    id: uuid.UUID
    name: str
    timezone: str
    currency: str
    week_start: int = Field(description="1 = Monday … 7 = Sunday")
    hourly_rate: int | None = Field(description="Minor units per hour")
    prevent_overlaps: bool
    lock_before: date | None
    long_running_timer_seconds: int = Field(
        description="Seconds a timer may run before its user is notified"
    )
    created_at: UtcTimestamp
    role: Role = Field(description="The caller's role in this organization")

    @classmethod
    def of(cls, row: Row, role: str) -> OrganizationRead:
        return cls.model_validate({**row, "hourly_rate": row["hourly_rate_amount"], "role": role})


# --- Members and teams -------------------------------------------------------------------


class MemberTeamRead(Ref):
    is_lead: bool


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    hourly_rate: int | None = Field(description="Minor units per hour; null below admin")
    joined_at: UtcTimestamp
    version: Version
    updated_at: UtcTimestamp
    teams: list[MemberTeamRead] = Field(description="Teams the member belongs to, by name")

    @classmethod
    def of(cls, row: Row, teams: Sequence[Row], *, show_rate: bool) -> MemberRead:
        return cls.model_validate(
            {
                **row,
                "hourly_rate": row["hourly_rate_amount"] if show_rate else None,
                "teams": [MemberTeamRead.model_validate(dict(team)) for team in teams],
            }
        )


class TeamRead(BaseModel):
    id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    version: Version
    updated_at: UtcTimestamp
    leads: list[UserRef]
    member_count: int = Field(description="Direct members of this team (not of sub-teams)")

    @classmethod
    def of(cls, row: Row, leads: Sequence[Row]) -> TeamRead:
        return cls.model_validate(
            {**row, "leads": [UserRef.model_validate(dict(lead)) for lead in leads]}
        )


# --- Clients, projects, tasks, tags ------------------------------------------------------


class ClientRead(BaseModel):
    id: uuid.UUID
    name: str
    archived: bool
    version: Version
    updated_at: UtcTimestamp


class ProjectRead(BaseModel):
    id: uuid.UUID
    name: str
    client: Ref | None
    color: str | None
    billable: bool
    hourly_rate: int | None = Field(description="Minor units per hour")
    budget_seconds: int | None
    budget_amount: int | None = Field(description="Minor units")
    archived: bool
    version: Version
    updated_at: UtcTimestamp
    tracked_seconds: int = Field(description="Finished entries the caller may see")
    billable_seconds: int = Field(description="Finished billable entries the caller may see")
    amount: int = Field(description="Minor units, of the entries the caller may see")
    budget_used: float | None = Field(
        description="Fraction of the budget used by the whole project (0.8 = 80 %): the larger"
        " of seconds / budget_seconds and amount / budget_amount; null without a budget"
    )

    @classmethod
    def of(cls, row: Row) -> ProjectRead:
        client = None
        if row["client_id"] is not None:
            client = Ref(id=row["client_id"], name=row["client_name"])
        used = budget_fraction(
            (row["total_seconds"], row["budget_seconds"]),
            (row["total_amount"], row["budget_amount"]),
        )
        return cls.model_validate(
            {**row, "client": client, "hourly_rate": row["hourly_rate_amount"], "budget_used": used}
        )


class TaskRead(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    budget_seconds: int | None
    done: bool
    version: Version
    updated_at: UtcTimestamp
    tracked_seconds: int = Field(description="Finished entries the caller may see")
    billable_seconds: int = Field(description="Finished billable entries the caller may see")
    amount: int = Field(description="Minor units, of the entries the caller may see")
    budget_used: float | None = Field(
        description="Fraction of budget_seconds used by the whole task; null without a budget"
    )

    @classmethod
    def of(cls, row: Row) -> TaskRead:
        used = budget_fraction((row["total_seconds"], row["budget_seconds"]))
        return cls.model_validate({**row, "budget_used": used})


class TagRead(BaseModel):
    id: uuid.UUID
    name: str
    version: Version
    updated_at: UtcTimestamp


# --- Timer -------------------------------------------------------------------------------


class RunningTimeEntryRead(BaseModel):
    """A running entry, shaped like an entry of /time-entries."""

    id: uuid.UUID
    user: UserRef
    project: ProjectRef | None
    client: Ref | None
    task: Ref | None
    tags: list[Ref] = Field(description="Ordered by tag id")
    description: str
    start_at: UtcTimestamp
    end_at: None = Field(description="Always null: the timer runs")
    duration_seconds: int = Field(description="Up to the moment of the request")
    billable: bool
    amount: int = Field(description="0 while running: amounts count finished entries")

    @classmethod
    def of(cls, row: Row) -> RunningTimeEntryRead:
        def ref(kind: str) -> Ref | None:
            key = row[f"{kind}_id"]
            return None if key is None else Ref(id=key, name=row[f"{kind}_name"])

        project = None
        if row["project_id"] is not None:
            project = ProjectRef(
                id=row["project_id"], name=row["project_name"], color=row["project_color"]
            )
        return cls(
            id=row["entry_id"],
            user=UserRef(id=row["user_id"], full_name=row["user_name"]),
            project=project,
            client=ref("client"),
            task=ref("task"),
            tags=[
                Ref(id=tag_id, name=name)
                for tag_id, name in zip(row["tag_ids"], row["tag_names"], strict=True)
            ],
            description=row["description"],
            start_at=row["start_at"],
            end_at=None,
            duration_seconds=row["elapsed_seconds"],
            billable=row["billable"],
            amount=0,
        )
