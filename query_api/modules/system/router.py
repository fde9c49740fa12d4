from __future__ import annotations

from fastapi import APIRouter

from query_api.dependencies import ReadSessionDep
from query_api.modules.system.dependencies import Operator
from query_api.modules.system.queries import projection_statuses
from query_api.modules.system.schemas import ProjectionStatusRead
from shared.responses import Envelope, ok

router = APIRouter(prefix="/system", tags=["system"])


@router.get("/projections", response_model=Envelope[list[ProjectionStatusRead]])
def get_projections(session: ReadSessionDep, _: Operator) -> Envelope[list[ProjectionStatusRead]]:
    """Per projection: checkpoint, watermark, lag in changes and seconds, dead letters and
    the last error. For admins of any organization, or with the ops token of the settings."""
    rows = projection_statuses(session)
    return ok([ProjectionStatusRead.model_validate(row) for row in rows])
