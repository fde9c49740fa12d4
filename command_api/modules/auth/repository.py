"""SQL of the auth module: refresh-token families and personal API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from command_api.modules.auth.models import ApiToken, RefreshToken
from shared.db import WriteSession


class RefreshTokenRepository:
    def __init__(self, session: WriteSession) -> None:
        self.session = session

    def add(
        self, *, user_id: uuid.UUID, family_id: uuid.UUID, token_hash: str, expires_at: datetime
    ) -> RefreshToken:
        token = RefreshToken(
            id=uuid.uuid4(),
            user_id=user_id,
            family_id=family_id,
            token_hash=token_hash,
            expires_at=expires_at,
        )
        self.session.add(token)
        self.session.flush()
        return token

    def lock_by_hash(self, token_hash: str) -> RefreshToken | None:
        """The token row, locked: a concurrent refresh with the same token waits for us
        and then sees it spent."""
        return self.session.execute(
            select(RefreshToken)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def mark_spent(self, token: RefreshToken, at: datetime) -> None:
        token.spent_at = at
        self.session.flush()

    def revoke_family(self, family_id: uuid.UUID, at: datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )

    def revoke_family_of(self, token_hash: str, at: datetime) -> None:
        """Revoke the family of the token with this hash (nothing when it is unknown)."""
        family = (
            select(RefreshToken.family_id)
            .where(RefreshToken.token_hash == token_hash)
            .scalar_subquery()
        )
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )

    def revoke_all_of_user(self, user_id: uuid.UUID, at: datetime) -> None:
        self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at)
            .execution_options(synchronize_session=False)
        )


class ApiTokenRepository:
    def __init__(self, session: WriteSession) -> None:
        self.session = session

    def add(
        self, *, user_id: uuid.UUID, name: str, token_hash: str, expires_at: datetime | None
    ) -> ApiToken:
        token = ApiToken(
            id=uuid.uuid4(),
            user_id=user_id,
            name=name,
            token_hash=token_hash,
            expires_at=expires_at,
        )
        self.session.add(token)
        self.session.flush()
        return token

    def get_live_of_user(self, token_id: uuid.UUID, user_id: uuid.UUID) -> ApiToken | None:
        """The user's token unless it was revoked; another user's token is not found."""
        return self.session.execute(
            select(ApiToken).where(
                ApiToken.id == token_id,
                ApiToken.user_id == user_id,
                ApiToken.revoked_at.is_(None),
            )
        ).scalar_one_or_none()

    def revoke(self, token: ApiToken, at: datetime) -> None:
        token.revoked_at = at
        self.session.flush()
