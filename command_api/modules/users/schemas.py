"""Bodies of the users module: the account as it is shown, and what its owner may change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from shared.notifications import NotificationKind
from shared.time import TimezoneName

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128

# Passwords are taken exactly as typed: never stripped.
NewPassword = Annotated[
    str, StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
]
# A password to check: no length rule beyond the ceiling, so a rule change locks nobody out.
GivenPassword = Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    timezone: str
    created_at: datetime


class UserUpdate(BaseModel):
    """Profile fields the user may change; an omitted field keeps its value."""

    model_config = ConfigDict(extra="forbid")

    full_name: FullName | None = None
    timezone: TimezoneName | None = None

    @field_validator("full_name", "timezone")
    @classmethod
    def _omit_rather_than_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: GivenPassword
    new_password: NewPassword


# --- Notification settings ---------------------------------------------------------------


class NotificationChannels(BaseModel):
    """How one kind of notification arrives: always in the inbox, unread when `in_app`
    (read, i.e. muted, when not); by email too when `email`."""

    model_config = ConfigDict(extra="forbid")

    in_app: bool
    email: bool


class NotificationSettingsPut(BaseModel):
    """The kinds to set; a kind left out keeps its setting. An unknown kind is a 422."""

    model_config = ConfigDict(extra="forbid")

    budget_threshold: NotificationChannels | None = None
    long_running_timer: NotificationChannels | None = None
    weekly_summary: NotificationChannels | None = None
    member_added: NotificationChannels | None = None
    role_changed: NotificationChannels | None = None
    webhook_disabled: NotificationChannels | None = None

    @field_validator("*")
    @classmethod
    def _omit_rather_than_null(cls, value: NotificationChannels | None) -> NotificationChannels:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    def chosen(self) -> dict[NotificationKind, NotificationChannels]:
        """The kinds the client sent, with their channels."""
        return {
            NotificationKind(kind): channels
            for kind in self.model_fields_set
            if (channels := getattr(self, kind)) is not None
        }


class NotificationSettingsRead(BaseModel):
    """Every kind, with the defaults (unread in the inbox, no email) where the user chose
    nothing."""

    budget_threshold: NotificationChannels
    long_running_timer: NotificationChannels
    weekly_summary: NotificationChannels
    member_added: NotificationChannels
    role_changed: NotificationChannels
    webhook_disabled: NotificationChannels
