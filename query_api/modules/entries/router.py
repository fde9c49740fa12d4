"""Time entries and the detailed report: filtered, visible-only, paged by number or by cursor,
and exported as CSV, XLSX or PDF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response, StreamingResponse

from query_api.dependencies import ENTRIES, OrgReader, OrgReaderDep, ReadSessionDep, consistent_with
from query_api.exports import (
    EXPORT_RESPONSES,
    ExportFormat,
    ExportFormatParam,
    check_export_size,
    export_cap,
    export_response,
    pdf_response,
)
from query_api.modules.entries import queries
from query_api.modules.entries.dependencies import (
    EntryQuery,
    EntryQueryDep,
    Listing,
    ListingDep,
    ReportEntryQueryDep,
    encode_entry_cursor,
)
from query_api.modules.entries.queries import EntryRow
from query_api.modules.entries.schemas import (
    DetailedReportRead,
    DetailedReportResponse,
    TimeEntryRead,
)
from query_api.pdf_headings import detailed_heading
from query_api.reports_pdf import render_detailed_pdf
from query_api.schemas import ReportTotalsRead
from shared.db import ReadSession
from shared.pagination import PageDep, PageParams, PaginationMeta
from shared.responses import PageEnvelope

router = APIRouter(prefix="/organizations/{org_id}", tags=["entries"])

EXPORT_COLUMNS = [
    "date",
    "start_at",
    "end_at",
    "user",
    "project",
    "client",
    "task",
    "tags",
    "description",
    "duration_seconds",
    "billable",
    "amount",
]


def export_row(row: EntryRow, now: datetime) -> list[Any]:
    return [
        row.local_date,
        row.start_at,
        row.end_at,
        row.user_name,
        row.project_name,
        row.client_name,
        row.task_name,
        ", ".join(row.tag_names),
        row.description,
        row.duration_at(now),
        row.billable,
        row.amount,
    ]


def read_page(
    session: ReadSession, query: EntryQuery, listing: Listing, page: PageParams
) -> tuple[list[TimeEntryRead], PaginationMeta]:
    """One page: by cursor (no count: `total` is null) or by number (with a count). Either
    way one row more than the page tells whether there is a next page and its cursor."""
    rows = queries.page_of_entries(
        session,
        query,
        sort=listing.sort,
        after=listing.after,
        offset=0 if listing.after else page.offset,
        limit=page.page_size + 1,
    )
    has_next = len(rows) > page.page_size
    rows = rows[: page.page_size]
    next_cursor = (
        encode_entry_cursor(query.org_id, listing.sort, rows[-1].keyset) if has_next else None
    )
    if listing.after is not None:
        meta = PaginationMeta(
            total=None,
            page=page.page,
            page_size=page.page_size,
            total_pages=None,
            has_next=has_next,
            has_previous=True,
        )
    else:
        # Past the last row, the total is known without counting.
        last_page = not has_next and (rows or page.page == 1)
        total = page.offset + len(rows) if last_page else queries.count_entries(session, query)
        meta = PaginationMeta.for_page(total=total, page=page.page, page_size=page.page_size)
        meta.has_next = has_next
    meta.next_cursor = next_cursor
    now = datetime.now(UTC)
    return [TimeEntryRead.of(row, now) for row in rows], meta


@router.get(
    "/time-entries",
    response_model=PageEnvelope[TimeEntryRead],
    dependencies=[Depends(consistent_with(ENTRIES))],
)
def list_time_entries(
    session: ReadSessionDep, query: EntryQueryDep, listing: ListingDep, page: PageDep
) -> PageEnvelope[TimeEntryRead]:
    """Time entries the caller may see, newest first unless `sort=start_at`. Filters narrow:
    local dates `from`/`to` (inclusive), user, team (and the teams below it), project,
    client, task, tag, billable, running, and `search` in the description.

    Page by number (`page`, with `total`) or walk with `cursor` (from
    `pagination.next_cursor`; `total` is then null): every entry is visited exactly once,
    even among entries starting at the same instant. A running timer shows `end_at: null`
    and its duration up to the moment of the request."""
    entries, meta = read_page(session, query, listing, page)
    return PageEnvelope[TimeEntryRead](data=entries, pagination=meta)


def _export_rows(
    session: ReadSession, query: EntryQuery, listing: Listing, now: datetime
) -> Iterator[list[Any]]:
    try:
        for row in queries.stream_entries(session, query, listing.sort):
            yield export_row(row, now)
    finally:
        # End the server-side cursor's transaction with the last row. The request's session
        # stays open while the response streams (FastAPI's "request" scope for dependencies
        # with yield); closing it here also holds if that ever changes.
        session.close()


def _export(
    session: ReadSession, query: EntryQuery, listing: Listing, export_format: ExportFormat
) -> StreamingResponse:
    count = queries.count_entries(session, query, at_most=export_cap(export_format))
    check_export_size(count, export_format)
    rows = _export_rows(session, query, listing, datetime.now(UTC))
    f = query.filters
    return export_response(
        export_format, EXPORT_COLUMNS, rows, f"detailed-report_{f.date_from}_{f.date_to}"
    )


def _pdf(session: ReadSession, org: OrgReader, query: EntryQuery, listing: Listing) -> Response:
    count = queries.count_entries(session, query, at_most=export_cap(ExportFormat.pdf))
    check_export_size(count, ExportFormat.pdf)
    heading = detailed_heading(session, org, query)
    totals = asdict(queries.finished_totals(session, query))
    entries = queries.stream_entries(session, query, listing.sort)
    timezone = str(org.organization["timezone"])
    content = render_detailed_pdf(heading, entries, totals, timezone=timezone, now=heading.made_at)
    f = query.filters
    return pdf_response(content, f"detailed-report_{f.date_from}_{f.date_to}.pdf")


@router.get(
    "/reports/detailed",
    response_model=DetailedReportResponse,
    dependencies=[Depends(consistent_with(ENTRIES))],
    responses=EXPORT_RESPONSES,
)
def get_detailed_report(
    session: ReadSessionDep,
    org: OrgReaderDep,
    query: ReportEntryQueryDep,
    listing: ListingDep,
    page: PageDep,
    export_format: ExportFormatParam = ExportFormat.json,
) -> DetailedReportResponse | Response:
    """The entries of a range (`from` and `to` required, local dates, inclusive) with the same
    filters, order and pagination as /time-entries, plus the totals of the whole filtered
    range (finished entries only).

    `format=csv` or `format=xlsx` answers every matching entry (no pagination) as an
    attachment with the columns date, start_at, end_at, user, project, client, task, tags,
    description, duration_seconds, billable, amount; past 100,000 rows it is a 422 naming
    `format` (narrow the range). `format=pdf` answers them as a document (times in the
    organization's time zone) ending with the totals; past 10,000 entries, the same 422."""
    if export_format is ExportFormat.pdf:
        return _pdf(session, org, query, listing)
    if export_format is not ExportFormat.json:
        return _export(session, query, listing, export_format)
    totals = queries.finished_totals(session, query)
    entries, meta = read_page(session, query, listing, page)
    report = DetailedReportRead(totals=ReportTotalsRead(**asdict(totals)), entries=entries)
    return DetailedReportResponse(data=report, pagination=meta)
