"""Request and response shapes of clients, projects, project members, tasks and tags.

Money is in minor units: the JSON field `hourly_rate` is the column `hourly_rate_amount`.
In PATCH bodies an absent field is left alone; `null` clears a nullable field and is
refused for the others.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from shared.responses import MoneyAmount, Version
from shared.time import Timestamp

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
# Budgets are positive: "no budget" is null, never zero (the table checks it too).
BudgetSeconds = Annotated[int, Field(gt=0, le=10**10)]
BudgetAmount = Annotated[int, Field(gt=0, le=10**12)]


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


def _rate_field() -> Any:
    """`hourly_rate` on the wire, `hourly_rate_amount` on the model."""
    return Field(
        default=None,
        validation_alias=AliasChoices("hourly_rate", "hourly_rate_amount"),
        serialization_alias="hourly_rate",
    )


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- Clients ---------------------------------------------------------------------------


class ClientCreate(_Write):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Globex"}]})

    name: Name


class ClientUpdate(_Write):
    name: Name | None = None
    archived: bool | None = None

    _not_null = field_validator("name", "archived")(_refuse_null)


class ClientRead(_Read):
    id: uuid.UUID
    name: str
    archived: bool
    version: Version
    created_at: Timestamp
    updated_at: Timestamp


# --- Projects --------------------------------------------------------------------------


class ProjectCreate(_Write):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Website", "color": "#3366FF", "hourly_rate": 9000}]
        }
    )

    name: Name
    client_id: uuid.UUID | None = None
    color: Color | None = None
    billable: bool = True
    hourly_rate: MoneyAmount | None = None
    budget_seconds: BudgetSeconds | None = None
    budget_amount: BudgetAmount | None = None


class ProjectUpdate(_Write):
    name: Name | None = None
    client_id: uuid.UUID | None = None
    color: Color | None = None
    billable: bool | None = None
    hourly_rate: MoneyAmount | None = None
    budget_seconds: BudgetSeconds | None = None
    budget_amount: BudgetAmount | None = None
    archived: bool | None = None

    _not_null = field_validator("name", "billable", "archived")(_refuse_null)


class ProjectRead(_Read):
    id: uuid.UUID
    name: str
    client_id: uuid.UUID | None
    color: str | None
    billable: bool
    hourly_rate: int | None = _rate_field()
    budget_seconds: int | None
    budget_amount: int | None
    archived: bool
    version: Version
    created_at: Timestamp
    updated_at: Timestamp


# --- Project members -------------------------------------------------------------------


class ProjectMemberPut(_Write):
    hourly_rate: MoneyAmount | None = None


class ProjectMemberRead(_Read):
    project_id: uuid.UUID
    user_id: uuid.UUID
    hourly_rate: int | None = _rate_field()


# --- Tasks -----------------------------------------------------------------------------


class TaskCreate(_Write):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Wireframes"}]})

    name: Name
    budget_seconds: BudgetSeconds | None = None


class TaskUpdate(_Write):
    name: Name | None = None
    done: bool | None = None
    budget_seconds: BudgetSeconds | None = None

    _not_null = field_validator("name", "done")(_refuse_null)


class TaskRead(_Read):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    budget_seconds: int | None
    done: bool
    version: Version
    created_at: Timestamp
    updated_at: Timestamp


# --- Tags ------------------------------------------------------------------------------


class TagCreate(_Write):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "meeting"}]})

    name: TagName


class TagUpdate(_Write):
    name: TagName | None = None

    _not_null = field_validator("name")(_refuse_null)


class TagRead(_Read):
    id: uuid.UUID
    name: str
    version: Version
    created_at: Timestamp
    updated_at: Timestamp
