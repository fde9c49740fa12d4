from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Team
from command_api.modules.shared_reports.models import SharedReport


class SharedReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_live(self, org_id: uuid.UUID, report_id: uuid.UUID) -> SharedReport | None:
        """A link of the organization's that is not revoked, locked for its revocation."""
        return self.session.execute(
            select(SharedReport)
            .where(
                SharedReport.id == report_id,
                SharedReport.org_id == org_id,
                SharedReport.revoked_at.is_(None),
            )
            .with_for_update()
        ).scalar_one_or_none()

    def add(self, report: SharedReport) -> None:
        self.session.add(report)
        self.session.flush()

    def flush(self) -> None:
        self.session.flush()

    def team_exists(self, org_id: uuid.UUID, team_id: uuid.UUID) -> bool:
        live = exists().where(Team.id == team_id, Team.org_id == org_id, Team.deleted_at.is_(None))
        return bool(self.session.execute(select(live)).scalar_one())
