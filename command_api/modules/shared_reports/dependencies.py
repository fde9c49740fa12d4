from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.organizations.scope import MemberScopeService
from command_api.modules.shared_reports.service import SharedReportService
from command_api.transaction import SessionDep


async def get_shared_report_service(session: SessionDep) -> SharedReportService:
    return SharedReportService(session, MemberScopeService(session))


SharedReportServiceDep = Annotated[SharedReportService, Depends(get_shared_report_service)]
