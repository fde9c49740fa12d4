"""Annotated aliases of the users module."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from command_api.modules.auth.service import SessionService
from command_api.modules.users.service import UserService
from command_api.transaction import SessionDep


async def get_user_service(session: SessionDep) -> UserService:
    # A password change ends the user's sessions, which belong to the auth module.
    return UserService(session, sessions=SessionService(session))


UserServiceDep = Annotated[UserService, Depends(get_user_service)]
