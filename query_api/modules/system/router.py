from __future__ import annotations

from fastapi import APIRouter

from query_api.dependencies import ReadSessionDep
from query_api.modules.system.dependencies import Operator
from query_api.modules.system.queries import projection_statuses, replica_status
from query_api.modules.system.schemas import (
    DeliveriesStatusRead,
    ProjectionStatusRead,
    ProjectionStatusResponse,
    ReplicaStatusRead,
)
from query_api.modules.webhooks.queries import delivery_counts
from shared.openapi import errors

router = APIRouter(prefix="/system", tags=["system"])


@router.get("/projections", response_model=ProjectionStatusResponse, responses=errors(403))
def get_projection_status(session: ReadSessionDep, _: Operator) -> ProjectionStatusResponse:
    """Per projection: checkpoint, watermark, lag in changes and seconds, dead letters and
    the last error. Beside them, `replica`: when the query API reads a streaming replica,
    whether its replay is paused and how far it is behind the primary (bytes of WAL received
    and not replayed, seconds), else null. On a replica the projections' figures are as of
    what it has replayed: a replica that stopped replaying shows them frozen, lag 0.
    `webhook_deliveries` counts the deliveries pending, retrying and failed.
    For admins of any organization, or with the ops token of the settings."""
    replica = replica_status(session)
    return ProjectionStatusResponse(
        data=[ProjectionStatusRead.model_validate(row) for row in projection_statuses(session)],
        replica=None if replica is None else ReplicaStatusRead.model_validate(replica),
        webhook_deliveries=DeliveriesStatusRead.model_validate(delivery_counts(session)),
    )
