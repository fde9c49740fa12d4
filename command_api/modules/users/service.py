"""Accounts: registration, credentials, profile and password."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from command_api.modules.users.models import User
from command_api.modules.users.repository import Channels, UserRepository
from command_api.modules.users.schemas import NotificationChannels, PasswordChange, UserUpdate
from shared.changes import ChangeOp, ChangeRecord, record_changes
from shared.db import WriteSession
from shared.errors import AlreadyExistsError, BusinessRuleError
from shared.notifications import NotificationKind
from shared.security import dummy_password_hash, hash_password, verify_password

USER_ENTITY = "user"
NOTIFICATION_SETTINGS_ENTITY = "notification_settings"
# A kind the user never set: in the inbox, no email.
DEFAULT_CHANNELS: Channels = {"in_app": True, "email": False}
EMAIL_UNIQUE_INDEX = "uq_users_email_lower"
UNIQUE_VIOLATION = "23505"
MAX_EMAIL_LENGTH = 320


class SessionRevoker(Protocol):
    """What the users module needs from auth: ending every session of a user."""

    def revoke_all_sessions(self, user_id: uuid.UUID) -> None: ...


def normalize_email(raw: str) -> str:
    """The stored form of an email: the validator's normalization, lowercased.

    Lookups use it too, so `Ann@Example.com` finds `ann@example.com`. Input that is not
    a valid email is only trimmed and lowercased (it can match nothing).
    """
    if len(raw) > MAX_EMAIL_LENGTH:
        return raw.strip().lower()
    try:
        normalized = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        normalized = raw.strip()
    return normalized.lower()


def _user_fields(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "full_name": user.full_name,
        "timezone": user.timezone,
    }


def _is_duplicate_email(exc: IntegrityError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) != UNIQUE_VIOLATION:
        return False
    diag = getattr(orig, "diag", None)
    return getattr(diag, "constraint_name", None) == EMAIL_UNIQUE_INDEX


class UserService:
    def __init__(self, session: WriteSession, sessions: SessionRevoker) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.sessions = sessions

    def register(self, *, email: str, password: str, full_name: str, timezone: str) -> User:
        """Create an account; emails are unique whatever their case (the database decides)."""
        user = User(
            id=uuid.uuid4(),
            email=normalize_email(email),
            full_name=full_name,
            password_hash=hash_password(password),
            timezone=timezone,
            is_active=True,
        )
        try:
            self.users.add(user)
        except IntegrityError as exc:
            if _is_duplicate_email(exc):
                raise AlreadyExistsError("An account with this email already exists") from exc
            raise
        self._record(user, ChangeOp.CREATED, old=None)
        return user

    def get_active(self, user_id: uuid.UUID) -> User | None:
        user = self.users.get(user_id)
        return user if user is not None and user.is_active else None

    def authenticate(self, email: str, password: str) -> User | None:
        """The active user with these credentials, else None.

        An unknown email costs one password verification too (against a dummy hash), so
        neither the answer nor its timing tells whether the account exists.
        """
        user = None
        if len(email) <= MAX_EMAIL_LENGTH:
            user = self.users.get_by_email(normalize_email(email))
        if user is None:
            verify_password(password, dummy_password_hash())
            return None
        if not verify_password(password, user.password_hash) or not user.is_active:
            return None
        return user

    def update_profile(self, user: User, changes: UserUpdate) -> User:
        values = changes.model_dump(exclude_unset=True)
        # Locked and re-read first: a concurrent update commits before we read `old`.
        user = self.users.lock(user.id)
        old = _user_fields(user)
        for field, value in values.items():
            setattr(user, field, value)
        if _user_fields(user) != old:
            self.users.flush()
            self._record(user, ChangeOp.UPDATED, old=old)
        return user

    def change_password(self, user: User, change: PasswordChange) -> None:
        """Set a new password and end every session: a stolen refresh token dies with it."""
        if not verify_password(change.current_password, user.password_hash):
            raise BusinessRuleError("The current password is incorrect")
        if change.new_password == change.current_password:
            raise BusinessRuleError("The new password must differ from the current one")
        user.password_hash = hash_password(change.new_password)
        self.users.flush()
        self.sessions.revoke_all_sessions(user.id)

    def put_notification_settings(
        self, user: User, chosen: dict[NotificationKind, NotificationChannels]
    ) -> dict[str, Channels]:
        """Set the channels of the chosen kinds (one upsert); answer every kind's setting.

        The user row is locked first, so two concurrent changes queue up and each change
        row's `old` is what the other one committed."""
        self.users.lock(user.id)
        old = self._notification_settings(user.id)
        given = {kind.value: channels.model_dump() for kind, channels in chosen.items()}
        new = {**old, **given}
        if new != old:
            self.users.upsert_notification_settings(user.id, given)
            record_changes(
                self.session,
                [
                    ChangeRecord(
                        entity=NOTIFICATION_SETTINGS_ENTITY,
                        entity_id=user.id,
                        op=ChangeOp.UPDATED,
                        org_id=None,
                        payload={"old": old, "new": new},
                    )
                ],
            )
        return new

    def _notification_settings(self, user_id: uuid.UUID) -> dict[str, Channels]:
        stored = self.users.notification_settings(user_id)
        return {kind.value: stored.get(kind.value, DEFAULT_CHANNELS) for kind in NotificationKind}

    def _record(self, user: User, op: ChangeOp, *, old: dict[str, Any] | None) -> None:
        record_changes(
            self.session,
            [
                ChangeRecord(
                    entity=USER_ENTITY,
                    entity_id=user.id,
                    op=op,
                    org_id=None,
                    payload={"old": old, "new": _user_fields(user)},
                )
            ],
        )
