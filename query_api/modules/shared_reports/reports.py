"""The report behind a link, made by the report endpoints' own functions for its creator as
they are now (role, teams): the same `data` as GET …/reports/{kind} would answer them, and
the same rows for an attachment.

`params` were checked when the link was made (command_api/modules/shared_reports), in the
names of the endpoints' query parameters: `from`, `to`, `group_by`, the filters, `week`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from query_api.dependencies import OrgReader
from query_api.exports import MAX_EXPORT_ROWS, ExportFormat, check_export_size, export_cap
from query_api.filters import EntryFilters, covered_users
from query_api.modules.entries import queries as entry_queries
from query_api.modules.entries.dependencies import EntryQuery, Listing, TimeEntrySort
from query_api.modules.entries.router import EXPORT_COLUMNS, export_row, read_page
from query_api.modules.reports.dependencies import summary_scope
from query_api.modules.reports.queries import SUMS, summary_rows, timesheet_cells
from query_api.modules.reports.schemas import (
    TimesheetRead,
    build_summary,
    build_timesheet,
    summary_export_rows,
)
from query_api.pdf_headings import detailed_heading, summary_heading, timesheet_heading
from query_api.reports_pdf import render_detailed_pdf, render_summary_pdf, render_timesheet_pdf
from shared.db import ReadSession
from shared.pagination import PageParams, PaginationMeta

# The detailed report of a link is walked by page number: its cursors are the entries
# listing's, for signed-in callers.
_NEWEST_FIRST = Listing(TimeEntrySort.newest_first, None)


@dataclass(frozen=True)
class ReportTable:
    """A report as the rows of an attachment."""

    header: Sequence[str]
    rows: Iterable[Sequence[Any]]
    filename_stem: str


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


def _filters(params: dict[str, Any]) -> EntryFilters:
    return EntryFilters(
        date_from=date.fromisoformat(params["from"]),
        date_to=date.fromisoformat(params["to"]),
        user_id=_uuid(params.get("user_id")),
        team_id=_uuid(params.get("team_id")),
        project_id=_uuid(params.get("project_id")),
        client_id=_uuid(params.get("client_id")),
        task_id=_uuid(params.get("task_id")),
        tag_id=_uuid(params.get("tag_id")),
        billable=params.get("billable"),
    )


# --- Summary -----------------------------------------------------------------------------


def _summary(session: ReadSession, org: OrgReader, params: dict[str, Any]) -> dict[str, Any]:
    group_by = tuple(params["group_by"])
    scope = summary_scope(session, org, _filters(params))
    return build_summary(summary_rows(session, scope, group_by), group_by)


def _summary_table(session: ReadSession, org: OrgReader, params: dict[str, Any]) -> ReportTable:
    rows = summary_export_rows(_summary(session, org, params))
    check_export_size(len(rows))
    stem = f"summary-{params['from']}-{params['to']}"
    return ReportTable([*params["group_by"], *SUMS], rows, stem)


# --- Detailed ----------------------------------------------------------------------------


def _entry_query(session: ReadSession, org: OrgReader, params: dict[str, Any]) -> EntryQuery:
    filters = _filters(params)
    return EntryQuery(org.org_id, covered_users(session, org, filters), filters, None, None)


def _detailed(
    session: ReadSession, org: OrgReader, params: dict[str, Any], page: PageParams
) -> tuple[dict[str, Any], PaginationMeta]:
    query = _entry_query(session, org, params)
    totals = entry_queries.finished_totals(session, query)
    entries, meta = read_page(session, query, _NEWEST_FIRST, page)
    meta.next_cursor = None
    report = {"totals": asdict(totals), "entries": [e.model_dump(mode="json") for e in entries]}
    return report, meta


def _entry_rows(session: ReadSession, query: EntryQuery, now: datetime) -> Iterator[list[Any]]:
    try:
        for row in entry_queries.stream_entries(session, query, _NEWEST_FIRST.sort):
            yield export_row(row, now)
    finally:
        session.close()  # the server-side cursor's transaction ends with the last row


def _detailed_table(session: ReadSession, org: OrgReader, params: dict[str, Any]) -> ReportTable:
    query = _entry_query(session, org, params)
    check_export_size(entry_queries.count_entries(session, query, at_most=MAX_EXPORT_ROWS))
    rows = _entry_rows(session, query, datetime.now(UTC))
    return ReportTable(EXPORT_COLUMNS, rows, f"detailed-report_{params['from']}_{params['to']}")


# --- Timesheet ---------------------------------------------------------------------------


def _timesheet(session: ReadSession, org: OrgReader, params: dict[str, Any]) -> TimesheetRead:
    year, week = params["week"].split("-W")
    monday = date.fromisocalendar(int(year), int(week), 1)
    target = _uuid(params.get("user_id")) or org.reader.id
    org.narrow_to(session, target)
    return build_timesheet(timesheet_cells(session, org.org_id, target, monday), monday, target)


def _timesheet_table(session: ReadSession, org: OrgReader, params: dict[str, Any]) -> ReportTable:
    """One row per project and task: their names, the seconds of each day, the total."""
    sheet = _timesheet(session, org, params)
    header = ["project", "task", *(day.isoformat() for day in sheet.days), "total"]
    rows = [
        [
            row.project.name if row.project else None,
            row.task.name if row.task else None,
            *row.seconds_per_day,
            row.total,
        ]
        for row in sheet.rows
    ]
    return ReportTable(header, rows, f"timesheet-{sheet.week}")


# --- By kind -----------------------------------------------------------------------------


def report_data(
    session: ReadSession, org: OrgReader, kind: str, params: dict[str, Any], page: PageParams
) -> tuple[Any, PaginationMeta | None]:
    """The report's usual `data` as plain JSON-able values, and its page (detailed only)."""
    if kind == "summary":
        return _summary(session, org, params), None
    if kind == "detailed":
        return _detailed(session, org, params, page)
    return _timesheet(session, org, params).model_dump(mode="json"), None


def report_table(
    session: ReadSession, org: OrgReader, kind: str, params: dict[str, Any]
) -> ReportTable:
    """The report as the rows of its attachment: as the summary and detailed reports export
    them (`format=csv|xlsx`); the timesheet one row per project and task."""
    if kind == "summary":
        return _summary_table(session, org, params)
    if kind == "detailed":
        return _detailed_table(session, org, params)
    return _timesheet_table(session, org, params)


def report_pdf(
    session: ReadSession, org: OrgReader, kind: str, params: dict[str, Any]
) -> tuple[bytes, str]:
    """The report as the PDF its endpoint's `format=pdf` makes, and the file's name."""
    if kind == "summary":
        summary = _summary(session, org, params)
        check_export_size(len(summary_export_rows(summary)), ExportFormat.pdf)
        group_by = tuple(params["group_by"])
        heading = summary_heading(session, org, _filters(params), group_by)
        return render_summary_pdf(heading, summary, group_by), (
            f"summary-{params['from']}-{params['to']}.pdf"
        )
    if kind == "detailed":
        query = _entry_query(session, org, params)
        at_most = export_cap(ExportFormat.pdf)
        check_export_size(
            entry_queries.count_entries(session, query, at_most=at_most), ExportFormat.pdf
        )
        heading = detailed_heading(session, org, query)
        totals = asdict(entry_queries.finished_totals(session, query))
        entries = entry_queries.stream_entries(session, query, _NEWEST_FIRST.sort)
        timezone = str(org.organization["timezone"])
        content = render_detailed_pdf(
            heading, entries, totals, timezone=timezone, now=heading.made_at
        )
        return content, f"detailed-report_{params['from']}_{params['to']}.pdf"
    sheet = _timesheet(session, org, params)
    heading = timesheet_heading(session, org, sheet.user_id, sheet.days[0])
    return render_timesheet_pdf(heading, sheet), f"timesheet-{sheet.week}.pdf"
