"""Who may see the system's state: an admin of any organization, or the ops token.

The credential is checked before the consistency wait, as everywhere in the query API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request

from query_api.dependencies import (
    CATALOG,
    ReadSessionDep,
    authenticate,
    reader_for,
    wait_for_projections,
)
from query_api.modules.system.queries import is_admin_anywhere
from shared.errors import ForbiddenError
from shared.http import is_ops_token


def operator_identity(request: Request, session: ReadSessionDep) -> uuid.UUID | None:
    """None for the ops token, else the id of the user the credential names (or a 401)."""
    presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if is_ops_token(presented):
        return None
    return authenticate(session, presented)


OperatorIdentity = Annotated[uuid.UUID | None, Depends(operator_identity)]


async def operator_consistency(
    request: Request, session: ReadSessionDep, _: OperatorIdentity
) -> None:
    token = request.headers.get("x-consistency-token")
    await wait_for_projections(request, session, token, CATALOG)


def require_operator(
    session: ReadSessionDep,
    user_id: OperatorIdentity,
    _: Annotated[None, Depends(operator_consistency)],
) -> None:
    if user_id is None:
        return
    reader = reader_for(session, user_id)
    if not is_admin_anywhere(session, reader.id):
        raise ForbiddenError("Only organization admins or operators see the system's state")


Operator = Annotated[None, Depends(require_operator)]
