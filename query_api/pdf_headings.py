"""What stands above a PDF report's table (`PdfHeading`): the organization, the report, its
range or week, and its parameters in words ("Filters: project Apollo; billable entries
only").

Names come from the organization's catalog in one query (a filter naming an id that is not
in the organization reads "(not found)": never a name from elsewhere). Shared reports call
the same functions with the parameters they stored.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, literal, select, union_all

from projections.models import (
    proj_clients,
    proj_members,
    proj_projects,
    proj_tags,
    proj_tasks,
    proj_teams,
)
from query_api.dependencies import OrgReader
from query_api.filters import EntryFilters
from query_api.modules.entries.dependencies import EntryQuery
from query_api.modules.reports.schemas import iso_week_label
from query_api.reports_pdf import PdfHeading
from shared.db import ReadSession

NOT_FOUND = "(not found)"

# Filter -> the table holding its name (users: their membership of the organization).
_NAMED = {
    "user_id": (proj_members, proj_members.c.user_id, proj_members.c.full_name),
    "team_id": (proj_teams, proj_teams.c.id, proj_teams.c.name),
    "project_id": (proj_projects, proj_projects.c.id, proj_projects.c.name),
    "client_id": (proj_clients, proj_clients.c.id, proj_clients.c.name),
    "task_id": (proj_tasks, proj_tasks.c.id, proj_tasks.c.name),
    "tag_id": (proj_tags, proj_tags.c.id, proj_tags.c.name),
}
_PHRASES = {
    "user_id": "user {}",
    "team_id": "team {} and the teams below it",
    "project_id": "project {}",
    "client_id": "client {}",
    "task_id": "task {}",
    "tag_id": "tag {}",
}


def filter_names(session: ReadSession, org_id: uuid.UUID, filters: EntryFilters) -> dict[str, str]:
    """The name of each id filter that is set, by filter ("project_id": "Apollo")."""
    selects: list[Select[Any]] = []
    for field, (table, id_column, name_column) in _NAMED.items():
        value = getattr(filters, field)
        if value is not None:
            selects.append(
                select(literal(field).label("field"), name_column.label("name")).where(
                    table.c.org_id == org_id, id_column == value
                )
            )
    if not selects:
        return {}
    rows = session.execute(union_all(*selects)).all()
    return {str(row.field): str(row.name) for row in rows}


def filters_in_words(
    filters: EntryFilters,
    names: dict[str, str],
    *,
    search: str | None = None,
    running: bool | None = None,
) -> str:
    """`Filters: project Apollo; billable entries only`, or `Filters: none`."""
    words = [
        phrase.format(names.get(field, NOT_FOUND))
        for field, phrase in _PHRASES.items()
        if getattr(filters, field) is not None
    ]
    if filters.billable is not None:
        words.append("billable entries only" if filters.billable else "non-billable entries only")
    if search:
        words.append(f'description contains "{search}"')
    if running is not None:
        words.append("running timers only" if running else "finished entries only")
    return "Filters: " + ("; ".join(words) if words else "none")


def group_by_in_words(group_by: tuple[str, ...]) -> str:
    """`Grouped by project, then user`."""
    return "Grouped by " + ", then ".join(group_by)


def _heading(org: OrgReader, title: str, period: str, *lines: str) -> PdfHeading:
    organization = org.organization
    return PdfHeading(
        str(organization["name"]), str(organization["currency"]), title, period, lines
    )


def _range(date_from: date | None, date_to: date | None) -> str:
    return f"{date_from} to {date_to}"


def summary_heading(
    session: ReadSession, org: OrgReader, filters: EntryFilters, group_by: tuple[str, ...]
) -> PdfHeading:
    names = filter_names(session, org.org_id, filters)
    return _heading(
        org,
        "Summary report",
        _range(filters.date_from, filters.date_to),
        group_by_in_words(group_by),
        filters_in_words(filters, names),
    )


def detailed_heading(session: ReadSession, org: OrgReader, query: EntryQuery) -> PdfHeading:
    names = filter_names(session, org.org_id, query.filters)
    words = filters_in_words(query.filters, names, search=query.search, running=query.running)
    period = _range(query.filters.date_from, query.filters.date_to)
    zone = f"Dates and times in {org.organization['timezone']}"
    return _heading(org, "Detailed report", period, words, zone)


def timesheet_heading(
    session: ReadSession, org: OrgReader, user_id: uuid.UUID, monday: date
) -> PdfHeading:
    sunday = monday + timedelta(days=6)
    period = f"{iso_week_label(monday)} ({_range(monday, sunday)})"
    names = filter_names(session, org.org_id, EntryFilters(user_id=user_id))
    return _heading(org, "Timesheet", period, f"User: {names.get('user_id', NOT_FOUND)}")
