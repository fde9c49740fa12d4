"""Reports: the summary (grouped totals, also as CSV, XLSX or PDF) and the weekly timesheet
(also as PDF)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.dependencies import OrgReaderDep, ReadSessionDep
from query_api.exports import (
    EXPORT_RESPONSES,
    PDF_RESPONSES,
    DocumentFormat,
    DocumentFormatParam,
    ExportFormat,
    ExportFormatParam,
    check_export_size,
    export_response,
    pdf_response,
)
from query_api.filters import ReportFiltersDep
from query_api.modules.reports.dependencies import (
    ConsistentEntries,
    GroupByDep,
    IsoWeekDep,
    summary_scope,
)
from query_api.modules.reports.queries import SUMS, summary_rows, timesheet_cells
from query_api.modules.reports.schemas import (
    SummaryReportRead,
    TimesheetRead,
    build_summary,
    build_timesheet,
    summary_export_rows,
)
from query_api.pdf_headings import summary_heading, timesheet_heading
from query_api.reports_pdf import render_summary_pdf, render_timesheet_pdf
from shared.responses import Envelope, ok, ok_json

router = APIRouter(prefix="/organizations/{org_id}/reports", tags=["reports"])


@router.get("/summary", response_model=Envelope[SummaryReportRead], responses=EXPORT_RESPONSES)
def get_summary_report(
    _: ConsistentEntries,
    org: OrgReaderDep,
    session: ReadSessionDep,
    filters: ReportFiltersDep,
    group_by: GroupByDep,
    export_format: ExportFormatParam = ExportFormat.json,
) -> Response:
    """Totals of finished entries between `from` and `to` (local dates, inclusive), grouped
    by one or two of project, client, user, task, tag, team, billable, day, week, month.

    Tags and teams count an entry under each of its tags / its user's current teams (the
    totals count it once); entries without a project, client, task, tag or team group under
    `key: null`, "(none)". Weeks start on the organization's `week_start` and are keyed by
    the ISO week of their first day. `format=csv|xlsx` answers one row per innermost group;
    `format=pdf` the groups and totals as a document (at most 10,000 groups). Read from the
    daily totals and their monthly roll-ups."""
    scope = summary_scope(session, org, filters)
    summary = build_summary(summary_rows(session, scope, group_by), group_by)
    if export_format is ExportFormat.json:
        return ok_json(summary)
    rows = summary_export_rows(summary)
    check_export_size(len(rows), export_format)
    stem = f"summary-{scope.date_from.isoformat()}-{scope.date_to.isoformat()}"
    if export_format is ExportFormat.pdf:
        heading = summary_heading(session, org, filters, group_by)
        return pdf_response(render_summary_pdf(heading, summary, group_by), f"{stem}.pdf")
    return export_response(export_format, [*group_by, *SUMS], rows, stem)


@router.get("/timesheet", response_model=Envelope[TimesheetRead], responses=PDF_RESPONSES)
def get_timesheet(
    _: ConsistentEntries,
    org: OrgReaderDep,
    session: ReadSessionDep,
    monday: IsoWeekDep,
    user_id: Annotated[
        uuid.UUID | None, Query(description="Someone in your scope; yourself by default")
    ] = None,
    export_format: DocumentFormatParam = DocumentFormat.json,
) -> Envelope[TimesheetRead] | Response:
    """One user's finished time of an ISO week (Monday to Sunday, local dates): a row per
    project and task with the seconds of each day, and the day totals; `format=pdf` as a
    document."""
    target = user_id or org.reader.id
    org.narrow_to(session, target)
    cells = timesheet_cells(session, org.org_id, target, monday)
    timesheet = build_timesheet(cells, monday, target)
    if export_format is DocumentFormat.json:
        return ok(timesheet)
    heading = timesheet_heading(session, org, target, monday)
    return pdf_response(render_timesheet_pdf(heading, timesheet), f"timesheet-{timesheet.week}.pdf")
