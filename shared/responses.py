"""The response envelope of API.md."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, Field

from shared.pagination import PaginationMeta

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    success: bool = True
    message: str = "Operation successful"
    data: T


class PageEnvelope(BaseModel, Generic[T]):
    success: bool = True
    data: list[T]
    pagination: PaginationMeta


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: str
    error_code: str
    details: Any | None = None


def ok(data: T, message: str = "Operation successful") -> Envelope[T]:
    return Envelope[T](data=data, message=message)


def error_body(message: str, error_code: str, details: Any | None = None) -> dict[str, Any]:
    return ErrorEnvelope(error=message, error_code=error_code, details=details).model_dump()


# Money in minor units (cents): never negative, never absurd.
MoneyAmount = Annotated[int, Field(ge=0, le=10**12)]
