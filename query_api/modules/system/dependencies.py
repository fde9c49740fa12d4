"""Who may see the system's state: an admin of any organization, or the ops token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from query_api.dependencies import CATALOG, ReadSessionDep, get_reader, wait_for_projections
from query_api.modules.system.queries import is_admin_anywhere
from shared.config import get_settings
from shared.errors import ForbiddenError


def require_operator(request: Request, session: ReadSessionDep) -> None:
    wait_for_projections(session, request.headers.get("x-consistency-token"), CATALOG)
    ops_token = get_settings().ops_token
    presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if (
        ops_token is not None
        and presented
        and hmac.compare_digest(presented, ops_token.get_secret_value())
    ):
        return
    reader = get_reader(request, session, _credentials(presented), None)
    if not is_admin_anywhere(session, reader.id):
        raise ForbiddenError("Only organization admins or operators see the system's state")


def _credentials(token: str):  # type: ignore[no-untyped-def]
    from fastapi.security import HTTPAuthorizationCredentials

    return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token) if token else None


Operator = Annotated[None, Depends(require_operator)]
