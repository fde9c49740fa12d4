"""Page-number pagination parameters and metadata (keyset cursors come with the query API)."""

from __future__ import annotations

import math
from typing import Annotated

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
