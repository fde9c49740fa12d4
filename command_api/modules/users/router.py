"""The signed-in user's own account."""

from __future__ import annotations

from fastapi import APIRouter, Response

from command_api.modules.auth.dependencies import CommandUser
from command_api.modules.users.dependencies import UserServiceDep
from command_api.modules.users.schemas import (
    NotificationSettingsPut,
    NotificationSettingsRead,
    PasswordChange,
    UserRead,
    UserUpdate,
)
from command_api.transaction import CommandRoute
from shared.openapi import errors
from shared.responses import Envelope, ok

router = APIRouter(route_class=CommandRoute)


@router.patch("/users/me", response_model=Envelope[UserRead])
def update_my_profile(
    data: UserUpdate, user: CommandUser, users: UserServiceDep
) -> Envelope[UserRead]:
    """Change your name or time zone; omitted fields keep their value."""
    return ok(UserRead.model_validate(users.update_profile(user, data)))


@router.post("/users/me/password", status_code=204, responses=errors(400))
def change_my_password(data: PasswordChange, user: CommandUser, users: UserServiceDep) -> Response:
    """Change your password. Every refresh token of yours is revoked: other sessions must
    sign in again (access tokens already issued live until they expire). A wrong current
    password, or a new one equal to it, is a 400."""
    users.change_password(user, data)
    return Response(status_code=204)


@router.put("/users/me/notification-settings", response_model=Envelope[NotificationSettingsRead])
def update_my_notification_settings(
    data: NotificationSettingsPut, user: CommandUser, users: UserServiceDep
) -> Envelope[NotificationSettingsRead]:
    """Choose, per kind, how notifications reach you: `{kind: {in_app, email}}`.

    Every notification is in your inbox (`GET /notifications`) whatever you choose.
    `in_app: true` makes it arrive unread; `in_app: false` mutes the kind: it arrives
    already read (no unread badge, not listed by `?unread=true`). `email: true` also
    sends it by email. Kinds left out keep their setting; the answer lists every kind,
    with the defaults (`in_app: true`, `email: false`) for those never set. An unknown
    kind is a 422 naming it."""
    settings = users.put_notification_settings(user, data.chosen())
    return ok(NotificationSettingsRead.model_validate(settings))
