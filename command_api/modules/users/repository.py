"""SQL of the users module."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from command_api.modules.users.models import User
from shared.db import WriteSession


class UserRepository:
    def __init__(self, session: WriteSession) -> None:
        self.session = session

    def get(self, user_id: uuid.UUID) -> User | None:
        return self.session.get(User, user_id)

    def get_by_email(self, email: str) -> User | None:
        """Case-insensitive, through the unique index on lower(email)."""
        return self.session.execute(
            select(User).where(func.lower(User.email) == email.lower())
        ).scalar_one_or_none()

    def add(self, user: User) -> User:
        """Insert inside a SAVEPOINT so a unique violation leaves the transaction usable."""
        with self.session.begin_nested():
            self.session.add(user)
        return user

    def flush(self) -> None:
        self.session.flush()
