"""Page-number pagination parameters and metadata (keyset cursors come with the query API)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


class PaginationMeta(BaseModel):
    total: int | None
    page: int
    page_size: int
    total_pages: int | None
    has_next: bool
    has_previous: bool
    next_cursor: str | None = None

    @classmethod
    def for_page(cls, *, total: int, page: int, page_size: int) -> PaginationMeta:
        total_pages = math.ceil(total / page_size) if total else 0
        return cls(
            total=total,
            page=page,
            page_size=page_size,
            total_pages=total_pages,
            has_next=page < total_pages,
            has_previous=page > 1,
        )


class PageParams(BaseModel):
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


PageDep = Annotated[PageParams, Depends(page_params)]


# --- Keyset cursors -----------------------------------------------------------------------
#
# A cursor is the sort key of the last row of a page, signed with the secret key so that a
# forged or garbled cursor is refused (422) instead of silently reading somewhere else.


class InvalidCursorError(ValueError):
    pass


def encode_cursor(values: list[Any], *, secret: str, purpose: str) -> str:
    payload = json.dumps([purpose, values], separators=(",", ":"), default=str).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=")
    signature = hmac.new(secret.encode(), body, hashlib.sha256).digest()[:16]
    return (body + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def decode_cursor(cursor: str, *, secret: str, purpose: str) -> list[Any]:
    try:
        body, signature = cursor.encode().split(b".", 1)
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(_unpad(signature), expected):
            raise InvalidCursorError("cursor signature does not match")
        kind, values = json.loads(_unpad(body))
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise InvalidCursorError("malformed cursor") from exc
    if kind != purpose or not isinstance(values, list):
        raise InvalidCursorError("cursor belongs to another listing")
    return values


def _unpad(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))
