"""Commands on shared reports: make a secret link to a report, revoke it.

The token (`secrets.token_urlsafe(32)`, 256 random bits) is shown once; only its SHA-256 is
stored, and no change row carries either. The query API finds a link by the hash of the
token it is read with (query_api/modules/shared_reports).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from command_api.modules.organizations.context import OrgContext
from command_api.modules.organizations.models import Role
from command_api.modules.organizations.scope import MemberScopeService
from command_api.modules.shared_reports.models import SharedReport
from command_api.modules.shared_reports.repository import SharedReportRepository
from command_api.modules.shared_reports.schemas import SharedReportBody
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.errors import NotFoundError
from shared.security import hash_opaque_token, new_opaque_token

ENTITY = "shared_report"
# Where the query API serves a link (its API prefix and route).
PUBLIC_PATH = "/api/v1/public/reports/{token}"


class SharedReportService:
    def __init__(self, session: Session, scope: MemberScopeService) -> None:
        self.session = session
        self.scope = scope
        self.repo = SharedReportRepository(session)

    def create(self, ctx: OrgContext, data: SharedReportBody) -> tuple[SharedReport, str]:
        """A link to the report `data` describes (manager and up); returns it and its token.
        A user or team the creator could not filter their report by is a 404, as there."""
        self._check_subject(ctx, *data.params.subject())
        token = new_opaque_token()
        report = SharedReport(
            id=uuid.uuid4(),
            org_id=ctx.org_id,
            created_by=ctx.user.id,
            name=data.name,
            kind=data.kind,
            params=data.params.stored(),
            token_hash=hash_opaque_token(token),
            expires_at=data.expires_at,
        )
        self.repo.add(report)
        self._record(report, ChangeOp.CREATED, None, report.read_state())
        return report, token

    def revoke(self, ctx: OrgContext, report_id: uuid.UUID) -> None:
        """Revoke a link: its creator's, or anyone's for an admin. Another's link is a 404
        to everyone else, as it is missing from their list."""
        report = self.repo.get_live(ctx.org_id, report_id)
        mine = report is not None and (
            report.created_by == ctx.user.id or ctx.role.at_least(Role.ADMIN)
        )
        if report is None or not mine:
            raise NotFoundError.for_entity("Shared report", report_id)
        old = report.read_state()
        report.revoked_at = func.now()
        self.repo.flush()
        self._record(report, ChangeOp.DELETED, old, None)

    def _check_subject(
        self, ctx: OrgContext, user_id: uuid.UUID | None, team_id: uuid.UUID | None
    ) -> None:
        if user_id is not None and user_id != ctx.user.id:
            # The scope a manager may write for is the scope they see (API.md, roles).
            member = user_id in self.scope.member_rates(ctx.org_id, [user_id])
            if not (member and self.scope.can_write_for(ctx, user_id)):
                raise NotFoundError.for_entity("User", user_id)
        if team_id is not None and not self.repo.team_exists(ctx.org_id, team_id):
            raise NotFoundError.for_entity("Team", team_id)

    def _record(
        self,
        report: SharedReport,
        op: ChangeOp,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        record_changes(
            self.session,
            [ChangeRecord(ENTITY, report.id, op, report.org_id, {"old": old, "new": new})],
        )
