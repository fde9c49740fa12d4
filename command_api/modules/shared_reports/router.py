"""Shared reports: secret links to a report that anyone holding them may read (managers
make them; their creator or an admin revokes them)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from command_api.modules.organizations.dependencies import OrgManager, OrgMember
from command_api.modules.shared_reports.dependencies import SharedReportServiceDep
from command_api.modules.shared_reports.schemas import SharedReportCreate, SharedReportCreated
from command_api.modules.shared_reports.service import PUBLIC_PATH
from command_api.transaction import CommandRoute
from shared.openapi import errors
from shared.responses import Envelope, ok

router = APIRouter(route_class=CommandRoute)

SHARED_REPORTS = "/organizations/{org_id}/shared-reports"


@router.post(
    SHARED_REPORTS,
    status_code=201,
    response_model=Envelope[SharedReportCreated],
    responses=errors(403),
)
def create_shared_report(
    body: SharedReportCreate, context: OrgManager, service: SharedReportServiceDep
) -> Envelope[SharedReportCreated]:
    """A secret link to a summary, detailed or timesheet report (manager and up).

    `params` are the report's own query parameters, checked as its endpoint checks them.
    Whoever holds the link reads the report at GET /public/reports/{token} of the query API,
    as its creator may see it at the time of reading, until it expires or is revoked. The
    token is shown in this answer only."""
    report, token = service.create(context, body)
    created = SharedReportCreated(
        id=report.id,
        name=report.name,
        kind=report.kind,
        params=report.params,
        expires_at=report.expires_at,
        created_at=report.created_at,
        token=token,
        url=PUBLIC_PATH.format(token=token),
    )
    return ok(created)


@router.delete(SHARED_REPORTS + "/{report_id}", status_code=204)
def revoke_shared_report(
    report_id: uuid.UUID, context: OrgMember, service: SharedReportServiceDep
) -> Response:
    """Revoke a link (its creator, or an admin): it answers 404 from the moment this
    command commits."""
    service.revoke(context, report_id)
    return Response(status_code=204)
