"""Bodies of the auth module."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, StringConstraints, field_validator

from command_api.modules.users.schemas import FullName, GivenPassword, NewPassword
from shared.time import Timestamp, TimezoneName

# Refresh tokens are 43 url-safe characters; the ceiling only keeps junk out.
OpaqueToken = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "full_name": "Ada Lovelace",
                    "timezone": "Europe/London",
                }
            ]
        },
    )

    email: EmailStr
    password: NewPassword
    full_name: FullName
    timezone: TimezoneName = "UTC"


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"email": "ada@example.com", "password": "correct horse battery"}]
        },
    )

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
    password: GivenPassword


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: OpaqueToken


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class OAuth2Token(BaseModel):
    """OAuth2's own token response (RFC 6749 §5.1), not enveloped."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: TokenName
    expires_at: Timestamp | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class ApiTokenCreated(BaseModel):
    """The new token; `token` is shown this once and only its hash is kept."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    token: str
    expires_at: datetime | None
    created_at: datetime
