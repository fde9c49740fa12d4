"""The filters shared by entries, reports and dashboards, and who they cover.

Dates are local dates in the organization's time zone; `from` and `to` are inclusive.
A filter asking for more than the caller may see narrows to what they may see; a user
outside their scope is a 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy import select

from projections.models import proj_team_closure, proj_team_members
from query_api.dependencies import OrgReader
from shared.db import ReadSession
from shared.errors import NotFoundError, ValidationFailedError
from shared.reports import MAX_RANGE_DAYS


def _invalid(field: str, message: str) -> ValidationFailedError:
    return ValidationFailedError(
        f"Invalid parameter '{field}': {message}",
        details=[{"field": field, "location": "query", "message": message, "type": "value_error"}],
    )


@dataclass(frozen=True)
class EntryFilters:
    date_from: date | None = None
    date_to: date | None = None
    user_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    tag_id: uuid.UUID | None = None
    billable: bool | None = None

    def check_range(self, *, required: bool) -> None:
        if required and self.date_from is None:
            raise _invalid("from", "is required")
        if required and self.date_to is None:
            raise _invalid("to", "is required")
        if self.date_from and self.date_to:
            if self.date_from > self.date_to:
                raise _invalid("from", "must not be after 'to'")
            if (self.date_to - self.date_from).days + 1 > MAX_RANGE_DAYS:
                raise _invalid("to", f"the range may cover at most {MAX_RANGE_DAYS} days")


def subject_filters(
    user_id: uuid.UUID | None = None,
    team_id: Annotated[uuid.UUID | None, Query(description="This team and all below it")] = None,
    project_id: uuid.UUID | None = None,
    client_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    tag_id: uuid.UUID | None = None,
    billable: bool | None = None,
) -> EntryFilters:
    """The filters on whose and what entries, without the range."""
    return EntryFilters(
        user_id=user_id,
        team_id=team_id,
        project_id=project_id,
        client_id=client_id,
        task_id=task_id,
        tag_id=tag_id,
        billable=billable,
    )


SubjectFiltersDep = Annotated[EntryFilters, Depends(subject_filters)]


def entry_filters(
    subject: SubjectFiltersDep,
    date_from: Annotated[
        date | None, Query(alias="from", description="Local date, inclusive")
    ] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Local date, inclusive")] = None,
) -> EntryFilters:
    """Listings: the range is optional."""
    filters = replace(subject, date_from=date_from, date_to=date_to)
    filters.check_range(required=False)
    return filters


EntryFiltersDep = Annotated[EntryFilters, Depends(entry_filters)]


def report_filters(
    subject: SubjectFiltersDep,
    date_from: Annotated[date, Query(alias="from", description="Local date, inclusive")],
    date_to: Annotated[date, Query(alias="to", description="Local date, inclusive")],
) -> EntryFilters:
    """Reports cover an explicit range: `from` and `to` are required (at most
    `MAX_RANGE_DAYS` days, `from` not after `to`)."""
    filters = replace(subject, date_from=date_from, date_to=date_to)
    filters.check_range(required=True)
    return filters


ReportFiltersDep = Annotated[EntryFilters, Depends(report_filters)]


def team_user_ids(
    session: ReadSession, org_id: uuid.UUID, team_id: uuid.UUID
) -> frozenset[uuid.UUID]:
    """Members of `team_id` and of every team below it (the closure table)."""
    closure = (
        session.execute(
            select(proj_team_closure.c.descendant_id).where(
                proj_team_closure.c.org_id == org_id, proj_team_closure.c.ancestor_id == team_id
            )
        )
        .scalars()
        .all()
    )
    if not closure:
        raise NotFoundError.for_entity("Team", team_id)
    rows = session.execute(
        select(proj_team_members.c.user_id).where(
            proj_team_members.c.org_id == org_id, proj_team_members.c.team_id.in_(closure)
        )
    ).scalars()
    return frozenset(uuid.UUID(str(r)) for r in rows)


def covered_users(
    session: ReadSession, org: OrgReader, filters: EntryFilters
) -> frozenset[uuid.UUID] | None:
    """The users whose entries the request covers: what the caller may see, narrowed by the
    user and team filters. None means the whole organization."""
    org.narrow_to(session, filters.user_id)
    users = org.visible_user_ids
    if filters.user_id is not None:
        users = frozenset({filters.user_id})
    if filters.team_id is not None:
        team = team_user_ids(session, org.org_id, filters.team_id)
        users = team if users is None else users & team
    return users
