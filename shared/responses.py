"""The response envelope of API.md."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi.responses import Response
from pydantic import BaseModel, Field
from pydantic_core import to_json

from shared.pagination import PaginationMeta

T = TypeVar("T")

# An entity's `version` (API.md, "Versions and conditional writes"), in both APIs' shapes.
Version = Annotated[
    int,
    Field(
        ge=1,
        description="Grows with every write of the entity itself (not of what it shows of "
        "others: a project's client name, totals, a team's leads); PATCH and DELETE of "
        "entries, projects, clients, tasks and tags take it in `If-Match`",
    ),
]


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


def ok_json(data: Any, message: str = "Operation successful") -> Response:
    """What `ok(data)` answers, serialized straight from plain data (dicts, lists, ids,
    dates) with no model validation: for large reports built by our own code, where
    validating every group again would cost more than the query. The route keeps its
    `response_model` for the OpenAPI schema; its tests check the shape."""
    body = {"success": True, "message": message, "data": data}
    return Response(to_json(body), media_type="application/json")


def error_body(message: str, error_code: str, details: Any | None = None) -> dict[str, Any]:
    return ErrorEnvelope(error=message, error_code=error_code, details=details).model_dump()


# Money in minor units (cents): never negative, never absurd.
MoneyAmount = Annotated[int, Field(ge=0, le=10**12)]
