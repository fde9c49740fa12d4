"""Reports: the summary (grouped totals, also as CSV or XLSX) and the weekly timesheet."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from query_api.dependencies import OrgReaderDep, ReadSessionDep
from query_api.exports import (
    EXPORT_RESPONSES,
    ExportFormat,
    ExportFormatParam,
    check_export_size,
    export_response,
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
    the ISO week of their first day. `format=csv|xlsx` answers one row per innermost group.
    Read from the daily totals and their monthly roll-ups."""
    scope = summary_scope(session, org, filters)
    summary = build_summary(summary_rows(session, scope, group_by), group_by)
    if export_format is ExportFormat.json:
        return ok_json(summary)
    rows = summary_export_rows(summary)
    check_export_size(len(rows))
    stem = f"summary-{scope.date_from.isoformat()}-{scope.date_to.isoformat()}"
    return export_response(export_format, [*group_by, *SUMS], rows, stem)


@router.get("/timesheet", response_model=Envelope[TimesheetRead])
def get_timesheet(
    _: ConsistentEntries,
    org: OrgReaderDep,
    session: ReadSessionDep,
    monday: IsoWeekDep,
    user_id: Annotated[
        uuid.UUID | None, Query(description="Someone in your scope; yourself by default")
    ] = None,
) -> Envelope[TimesheetRead]:
    """One user's finished time of an ISO week (Monday to Sunday, local dates): a row per
    project and task with the seconds of each day, and the day totals."""
    target = user_id or org.reader.id
    org.narrow_to(session, target)
    cells = timesheet_cells(session, org.org_id, target, monday)
    return ok(build_timesheet(cells, monday, target))
