"""Response shapes of the summary and timesheet reports, and how aggregated rows become them.

Group keys (API.md "Shapes fixed by this contract"): the id for project, client, user,
task, tag and team; `YYYY-MM-DD` for day; the ISO week `YYYY-Www` of the week's first day
for week; `YYYY-MM` for month; true/false for billable; null, labelled "(none)", for
entries without a project, client, task, tag or team.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from query_api.modules.reports.queries import DAILY, SummaryRow, TimesheetCell, Totals
from query_api.schemas import Ref, ReportTotalsRead

NONE_LABEL = "(none)"
# An id whose record is gone from the catalog (a deleted project, task or tag).
DELETED_LABEL = "(deleted)"
GroupKey = str | bool | None


class SummaryGroupRead(BaseModel):
    key: GroupKey = Field(description="Id, date, ISO week, month or true/false; null: (none)")
    label: str
    seconds: int
    billable_seconds: int
    amount: int
    entries: int


class SummaryOuterGroupRead(SummaryGroupRead):
    """A group of the first dimension when grouping by two."""

    groups: list[SummaryGroupRead] = Field(description="Its groups by the second dimension")


class SummaryReportRead(BaseModel):
    totals: ReportTotalsRead
    groups: list[SummaryOuterGroupRead] | list[SummaryGroupRead]


class TimesheetRowRead(BaseModel):
    project: Ref | None
    task: Ref | None
    seconds_per_day: list[int] = Field(description="Seven values, one per day of `days`")
    total: int


class TimesheetRead(BaseModel):
    week: str = Field(description="The ISO week, YYYY-Www")
    user_id: uuid.UUID
    days: list[date] = Field(description="Monday to Sunday of the ISO week")
    rows: list[TimesheetRowRead]
    totals_per_day: list[int]
    total: int


# --- Building the summary ------------------------------------------------------------------


def iso_week_label(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def group_key(dim: str, key: Any) -> GroupKey:
    if key is None or dim == "billable":
        return None if key is None else bool(key)
    if dim == "day":
        return str(key.isoformat())
    if dim == "week":
        return iso_week_label(key)
    if dim == "month":
        return f"{key.year:04d}-{key.month:02d}"
    return str(key)


def group_label(dim: str, key: Any, label: str | None) -> str:
    if dim == "billable":
        return "Billable" if key else "Non-billable"
    if key is None:
        return NONE_LABEL
    if dim in DAILY or dim == "month":
        return str(group_key(dim, key))
    return label if label is not None else DELETED_LABEL


def _sort_key(dim: str, key: Any, label: str) -> tuple[Any, ...]:
    """Time in order, billable first, names alphabetically with (none) last."""
    if dim in DAILY or dim == "month":
        return (key is None, key or date.min)
    if dim == "billable":
        return (not key,)
    return (key is None, label.casefold(), str(key))


def _groups(dim: str, rows: list[SummaryRow]) -> list[dict[str, Any]]:
    """The groups of `rows` by their last key, in order."""
    keyed = []
    for row in rows:
        key = row.keys[-1]
        label = group_label(dim, key, row.labels[-1])
        group = {"key": group_key(dim, key), "label": label, **row.totals}
        keyed.append((_sort_key(dim, key, label), group))
    keyed.sort(key=lambda pair: pair[0])
    return [group for _, group in keyed]


def build_summary(rows: list[SummaryRow], group_by: tuple[str, ...]) -> dict[str, Any]:
    """Nest and order the aggregated rows of `summary_rows`: a `SummaryReportRead` as plain data.

    Plain dicts, not models: a year by user and day is a hundred thousand groups, built by
    this code from integers and ids, and validating each again would cost seconds. The
    router serializes them as they are (`shared.responses.ok_json`); the tests hold them
    to the `SummaryReportRead` schema."""
    totals = next((row.totals for row in rows if row.level == 0), Totals().__dict__)
    outer = _at(rows, 1)
    groups = _groups(group_by[0], outer)
    if len(group_by) == 2:
        inner: dict[Any, list[SummaryRow]] = defaultdict(list)
        for row in _at(rows, 2):
            inner[row.keys[0]].append(row)
        # The outer groups in order, each with its inner groups (keys as the rows hold them).
        raw_keys = {group_key(group_by[0], row.keys[0]): row.keys[0] for row in outer}
        for group in groups:
            group["groups"] = _groups(group_by[1], inner[raw_keys[group["key"]]])
    return {"totals": totals, "groups": groups}


def _at(rows: list[SummaryRow], level: int) -> list[SummaryRow]:
    return [row for row in rows if row.level == level]


def summary_export_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One row per innermost group: the label of each dimension, then the four sums."""
    rows: list[list[Any]] = []
    for group in summary["groups"]:
        if "groups" in group:
            leaves = [([group["label"], child["label"]], child) for child in group["groups"]]
        else:
            leaves = [([group["label"]], group)]
        for labels, leaf in leaves:
            rows.append([*labels, *(leaf[name] for name in _SUMS)])
    return rows


_SUMS = ("seconds", "billable_seconds", "amount", "entries")


# --- Building the timesheet ----------------------------------------------------------------


def build_timesheet(cells: list[TimesheetCell], monday: date, user_id: uuid.UUID) -> TimesheetRead:
    days = [monday.fromordinal(monday.toordinal() + offset) for offset in range(7)]
    per_row: dict[tuple[Any, Any], list[int]] = {}
    refs: dict[tuple[Any, Any], tuple[Ref | None, Ref | None]] = {}
    for cell in cells:
        row_key = (cell.project_id, cell.task_id)
        per_row.setdefault(row_key, [0] * 7)[(cell.day - monday).days] += cell.seconds
        refs[row_key] = (
            _ref(cell.project_id, cell.project_name),
            _ref(cell.task_id, cell.task_name),
        )
    rows = [
        TimesheetRowRead(
            project=refs[key][0], task=refs[key][1], seconds_per_day=seconds, total=sum(seconds)
        )
        for key, seconds in per_row.items()
    ]
    rows.sort(key=_timesheet_order)
    totals_per_day = [sum(row.seconds_per_day[i] for row in rows) for i in range(7)]
    return TimesheetRead(
        week=iso_week_label(monday),
        user_id=user_id,
        days=days,
        rows=rows,
        totals_per_day=totals_per_day,
        total=sum(totals_per_day),
    )


def _ref(record_id: uuid.UUID | None, name: str | None) -> Ref | None:
    if record_id is None:
        return None
    return Ref(id=record_id, name=name if name is not None else DELETED_LABEL)


def _timesheet_order(row: TimesheetRowRead) -> tuple[Any, ...]:
    """Projects by name, (no project) last; within one, tasks by name, (no task) first."""
    project, task = row.project, row.task
    return (
        project is None,
        project.name.casefold() if project else "",
        str(project.id) if project else "",
        task is not None,
        task.name.casefold() if task else "",
        str(task.id) if task else "",
    )
