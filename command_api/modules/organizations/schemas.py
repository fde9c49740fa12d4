"""Request and response shapes of organizations, memberships, teams and team members.

Money is in minor units: the JSON field `hourly_rate` is the column `hourly_rate_amount`.
In PATCH bodies an absent field is left alone; `null` clears a nullable field
(`hourly_rate`, `lock_before`, `parent_id`) and is refused for the others.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from command_api.modules.organizations.models import (
    DEFAULT_LONG_RUNNING_TIMER_SECONDS,
    MAX_LONG_RUNNING_TIMER_SECONDS,
    MIN_LONG_RUNNING_TIMER_SECONDS,
    Membership,
    Role,
)
from command_api.modules.users.models import User
from shared.responses import MoneyAmount, Version
from shared.time import Day, TimezoneName

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# ISO 4217 alphabetic code, e.g. "EUR".
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# ISO weekday: 1 = Monday … 7 = Sunday.
WeekStart = Annotated[int, Field(ge=1, le=7)]
# How long a timer may run before its user is told: 15 minutes to 7 days.
TimerLimit = Annotated[
    int,
    Field(
        ge=MIN_LONG_RUNNING_TIMER_SECONDS,
        le=MAX_LONG_RUNNING_TIMER_SECONDS,
        description="Seconds a timer may run before its user is notified (900 to 604800)",
    ),
]


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


# --- Organizations ---------------------------------------------------------------------


class OrganizationCreate(_Write):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Acme", "timezone": "Europe/Paris", "currency": "EUR"}]
        }
    )

    name: Name
    timezone: TimezoneName
    currency: Currency
    week_start: WeekStart = 1
    hourly_rate: MoneyAmount | None = None
    prevent_overlaps: bool = False
    lock_before: Day | None = None
    long_running_timer_seconds: TimerLimit = DEFAULT_LONG_RUNNING_TIMER_SECONDS


class OrganizationUpdate(_Write):
    name: Name | None = None
    timezone: TimezoneName | None = None
    currency: Currency | None = None
    week_start: WeekStart | None = None
    hourly_rate: MoneyAmount | None = None
    prevent_overlaps: bool | None = None
    lock_before: Day | None = None
    long_running_timer_seconds: TimerLimit | None = None

    _not_null = field_validator(
        "name",
        "timezone",
        "currency",
        "week_start",
        "prevent_overlaps",
        "long_running_timer_seconds",
    )(_refuse_null)


class OrganizationRead(_Read):
    id: uuid.UUID
    name: str
    timezone: str
    currency: str
    week_start: int
    hourly_rate: int | None = _rate_field()
    prevent_overlaps: bool
    lock_before: date | None
    long_running_timer_seconds: int
    created_at: datetime
    updated_at: datetime


# --- Memberships -----------------------------------------------------------------------


class MemberCreate(_Write):
    email: EmailStr
    role: Role
    hourly_rate: MoneyAmount | None = None


class MemberUpdate(_Write):
    role: Role | None = None
    hourly_rate: MoneyAmount | None = None

    _not_null = field_validator("role")(_refuse_null)


class MembershipRead(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    hourly_rate: int | None
    version: Version
    updated_at: datetime

    @classmethod
    def of(cls, membership: Membership, user: User) -> MembershipRead:
        return cls(
            id=membership.id,
            user_id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=Role(membership.role),
            hourly_rate=membership.hourly_rate_amount,
            version=membership.version,
            updated_at=membership.updated_at,
        )


# --- Teams -----------------------------------------------------------------------------


class TeamCreate(_Write):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Design"}]})

    name: Name
    parent_id: uuid.UUID | None = None


class TeamUpdate(_Write):
    name: Name | None = None
    parent_id: uuid.UUID | None = None

    _not_null = field_validator("name")(_refuse_null)


class TeamRead(_Read):
    id: uuid.UUID
    name: str
    parent_id: uuid.UUID | None
    version: Version
    updated_at: datetime


class TeamMemberUpsert(_Write):
    """`is_lead` absent keeps a link's current flag (false for a new link)."""

    is_lead: bool | None = None

    _not_null = field_validator("is_lead")(_refuse_null)


class TeamMemberRead(_Read):
    team_id: uuid.UUID
    user_id: uuid.UUID
    is_lead: bool
