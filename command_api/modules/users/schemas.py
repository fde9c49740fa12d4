"""Bodies of the users module: the account as it is shown, and what its owner may change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

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
