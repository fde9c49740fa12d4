"""`Idempotency-Key` on POST commands: a retry with the same key and body replays the first
response and writes nothing; the same key with another body is a 409.

The key row is inserted at the start of the command's transaction. A concurrent retry
blocks on the unique index until the first request finishes: it then sees the stored
response (first request committed) or takes over the key (first request rolled back).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Index, Integer, LargeBinary, String, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import Base, TimestampMixin, UUIDPrimaryKey
from shared.errors import ConflictError

MAX_KEY_LENGTH = 255
STATE_KEY = "idempotency_row_id"


class IdempotencyKey(UUIDPrimaryKey, TimestampMixin, Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        Index("uq_idempotency_keys_user_id_key", "user_id", "key", unique=True),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    consistency_token: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class IdempotentReplay(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised to answer with the stored response instead of running the command again."""

    def __init__(self, status_code: int, body: bytes, consistency_token: str | None) -> None:
        self.status_code = status_code
        self.body = body
        self.consistency_token = consistency_token


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def claim_key(
    session: Session, *, user_id: uuid.UUID, key: str, fingerprint: str, ttl_seconds: int
) -> uuid.UUID:
    """Claim `key` for this request, or raise IdempotentReplay / ConflictError."""
    now = datetime.now(UTC)
    # An expired key may be reused: clear it first (rare, cheap, keyed lookup).
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at < now,
        )
    )
    row_id = session.execute(
        insert(IdempotencyKey)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            key=key,
            request_hash=fingerprint,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.id)
    ).scalar_one_or_none()
    if row_id is not None:
        return row_id
    existing = session.execute(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).scalar_one()
    if existing.request_hash != fingerprint:
        raise ConflictError(
            "This Idempotency-Key was already used with a different request",
            details={"header": "Idempotency-Key"},
        )
    if existing.status_code is None or existing.response_body is None:
        raise ConflictError("A request with this Idempotency-Key is still in progress")
    raise IdempotentReplay(existing.status_code, existing.response_body, existing.consistency_token)


def store_response(
    session: Session, row_id: uuid.UUID, status_code: int, body: bytes, token: str
) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id)
        .values(status_code=status_code, response_body=body, consistency_token=token)
    )


def prune_expired(session: Session, limit: int = 5000) -> int:
    result = session.execute(
        text(
            "DELETE FROM idempotency_keys WHERE id IN ("
            " SELECT id FROM idempotency_keys WHERE expires_at < now() LIMIT :limit)"
        ),
        {"limit": limit},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def replay_headers(replay: IdempotentReplay) -> dict[str, Any]:
    headers = {"Idempotent-Replayed": "true"}
    if replay.consistency_token:
        headers["X-Consistency-Token"] = replay.consistency_token
    return headers
