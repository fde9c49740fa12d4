"""Shared reports: an organization's links (their creators; admins all), and the public read
of a link, with no authentication."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic_core import to_json

from query_api.dependencies import OrgReaderDep, ReadSessionDep
from query_api.exports import (
    EXPORT_RESPONSES,
    ExportFormat,
    ExportFormatParam,
    export_response,
    pdf_response,
)
from query_api.modules.shared_reports.dependencies import (
    OpenedLink,
    OpenedLinkDep,
    link_not_found,
)
from query_api.modules.shared_reports.queries import shared_reports_page
from query_api.modules.shared_reports.reports import report_data, report_pdf, report_table
from query_api.modules.shared_reports.schemas import PublicReportResponse, SharedReportRead
from shared.db import ReadSession
from shared.errors import NotFoundError
from shared.openapi import errors
from shared.pagination import PageDep, PageParams, PaginationMeta
from shared.responses import PageEnvelope

router = APIRouter(tags=["shared reports"])


@router.get("/organizations/{org_id}/shared-reports", response_model=PageEnvelope[SharedReportRead])
def list_shared_reports(
    org: OrgReaderDep, session: ReadSessionDep, params: PageDep
) -> PageEnvelope[SharedReportRead]:
    """The caller's live links, newest first (admins and owners: everyone's), expired ones
    included; never a token."""
    created_by = None if org.at_least("admin") else org.reader.id
    rows, total = shared_reports_page(session, org.org_id, created_by, params)
    return PageEnvelope(
        data=[SharedReportRead.model_validate(dict(row)) for row in rows],
        pagination=PaginationMeta.for_page(
            total=total, page=params.page, page_size=params.page_size
        ),
    )


@router.get(
    "/public/reports/{token}",
    response_model=PublicReportResponse,
    responses={**EXPORT_RESPONSES, **errors(404, 429)},
)
def read_shared_report(
    link: OpenedLinkDep,
    session: ReadSessionDep,
    page: PageDep,
    export_format: ExportFormatParam = ExportFormat.json,
) -> Response:
    """The report a link shows, as its creator may see it now: no authentication, the token
    is the secret. JSON (`page` and `page_size` page a detailed report's entries), or with
    `format=csv|xlsx` an attachment with the rows the report's own export has, or with
    `format=pdf` the report's document.

    An unknown, revoked or expired link is the same 404, and so is one whose creator left
    the organization or is no longer a manager. Reads are rate limited per client address
    (PUBLIC_REPORT_RATE_LIMIT_PER_IP a minute, then 429 with Retry-After)."""
    try:
        if export_format is ExportFormat.json:
            return _json(session, link, page)
        return _attachment(session, link, export_format)
    except NotFoundError:
        # A user or team of the link's params the creator can no longer see.
        raise link_not_found() from None


def _json(session: ReadSession, link: OpenedLink, page: PageParams) -> Response:
    report, pagination = report_data(session, link.creator, link.kind, link.params, page)
    organization = link.creator.organization
    data = {
        "name": link.name,
        "kind": link.kind,
        "organization": {"name": organization["name"], "currency": organization["currency"]},
        "params": link.params,
        "report": report,
    }
    body = {
        "success": True,
        "message": "Operation successful",
        "data": data,
        "pagination": None if pagination is None else pagination.model_dump(mode="json"),
    }
    return Response(to_json(body), media_type="application/json")


def _attachment(session: ReadSession, link: OpenedLink, export_format: ExportFormat) -> Response:
    if export_format is ExportFormat.pdf:
        content, filename = report_pdf(session, link.creator, link.kind, link.params)
        return pdf_response(content, filename)
    table = report_table(session, link.creator, link.kind, link.params)
    return export_response(export_format, table.header, table.rows, table.filename_stem)
