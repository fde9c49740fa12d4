"""Who may see the system's state: an admin of any organization, or the ops token.

The credential is checked before the consistency wait, as everywhere in the query API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from query_api.dependencies import (
    CATALOG,
    ConsistencyToken,
    ReadSessionDep,
    authenticate,
    bearer_scheme,
    reader_for,
    wait_for_projections,
)
from query_api.modules.system.queries import is_admin_anywhere
from shared.errors import ForbiddenError
from shared.http import is_ops_token


def operator_identity(
    session: ReadSessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> uuid.UUID | None:
    """None for the ops token, else the id of the user the credential names (or a 401).

    The bearer scheme declares the credential in the OpenAPI document (shared/docs.py offers
    the password flow beside it); it refuses no request itself."""
    presented = None if credentials is None else credentials.credentials
    if presented is not None and is_ops_token(presented):
        return None
    return authenticate(session, presented)


OperatorIdentity = Annotated[uuid.UUID | None, Depends(operator_identity)]


async def operator_consistency(
    request: Request,
    session: ReadSessionDep,
    _: OperatorIdentity,
    consistency_token: ConsistencyToken = None,
) -> None:
    await wait_for_projections(request, session, consistency_token, CATALOG)


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
