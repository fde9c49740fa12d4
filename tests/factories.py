"""Test data, written straight to the database so that every module's tests stand alone.

Endpoints under test are always called through HTTP; these factories only prepare the
world around them (users with tokens, organizations with members).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, text

PASSWORD = "correct horse battery staple"


def _record_change(conn: Any, entity: str, entity_id: uuid.UUID, org_id: uuid.UUID | None) -> None:
    """What the command would have logged: projections must see factory-made rows too.

    Marked `seeded` so that tests of the commands' own change rows can leave them out."""
    conn.execute(
        text(
            "INSERT INTO changes (org_id, entity, entity_id, op, payload)"
            " VALUES (:org, :entity, :id, 'created', '{\"seeded\": true}')"
        ),
        {"org": org_id, "entity": entity, "id": entity_id},
    )


@lru_cache
def _password_hash() -> str:
    from shared.security import hash_password

    return hash_password(PASSWORD)


@dataclass
class UserHandle:
    id: uuid.UUID
    email: str
    full_name: str
    password: str = PASSWORD
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class OrgHandle:
    id: uuid.UUID
    owner: UserHandle
    members: dict[str, UserHandle] = field(default_factory=dict)

    def path(self, suffix: str = "") -> str:
        return f"/organizations/{self.id}{suffix}"


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def make_user(db: Engine, *, email: str | None = None, full_name: str = "Test User") -> UserHandle:
    from shared.security import create_access_token

    user_id = uuid.uuid4()
    email = email or unique_email()
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, full_name, password_hash, timezone, is_active)"
                " VALUES (:id, :email, :name, :hash, 'UTC', true)"
            ),
            {"id": user_id, "email": email, "name": full_name, "hash": _password_hash()},
        )
        _record_change(conn, "user", user_id, None)
    return UserHandle(
        id=user_id, email=email, full_name=full_name, token=create_access_token(user_id)
    )


def make_org(
    db: Engine,
    owner: UserHandle | None = None,
    *,
    timezone: str = "UTC",
    currency: str = "EUR",
    hourly_rate_amount: int | None = None,
    prevent_overlaps: bool = False,
    lock_before: date | None = None,
    week_start: int = 1,
) -> OrgHandle:
    owner = owner or make_user(db, full_name="Owner")
    org_id = uuid.uuid4()
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, timezone, currency, week_start,"
                " hourly_rate_amount, prevent_overlaps, lock_before)"
                " VALUES (:id, :name, :tz, :cur, :ws, :rate, :po, :lock)"
            ),
            {
                "id": org_id,
                "name": f"Org {org_id.hex[:6]}",
                "tz": timezone,
                "cur": currency,
                "ws": week_start,
                "rate": hourly_rate_amount,
                "po": prevent_overlaps,
                "lock": lock_before,
            },
        )
        _record_change(conn, "organization", org_id, org_id)
        _insert_membership(conn, org_id, owner.id, "owner", None)
    return OrgHandle(id=org_id, owner=owner, members={"owner": owner})


def _insert_membership(
    conn: Any, org_id: uuid.UUID, user_id: uuid.UUID, role: str, rate: int | None
) -> None:
    membership_id = uuid.uuid4()
    conn.execute(
        text(
            "INSERT INTO memberships (id, org_id, user_id, role, hourly_rate_amount)"
            " VALUES (:id, :org, :user, :role, :rate)"
        ),
        {"id": membership_id, "org": org_id, "user": user_id, "role": role, "rate": rate},
    )
    _record_change(conn, "membership", membership_id, org_id)


def add_member(
    db: Engine,
    org: OrgHandle,
    role: str = "member",
    *,
    hourly_rate_amount: int | None = None,
    user: UserHandle | None = None,
) -> UserHandle:
    user = user or make_user(db, full_name=f"A {role}")
    with db.begin() as conn:
        _insert_membership(conn, org.id, user.id, role, hourly_rate_amount)
    org.members.setdefault(role, user)
    return user


def change_rows(db: Engine, entity_id: uuid.UUID) -> list[dict[str, Any]]:
    """The change-log rows written for one aggregate, oldest first."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT entity, op, org_id, payload FROM changes WHERE entity_id = :id"
                " AND NOT payload ? 'seeded' ORDER BY tx, id"
            ),
            {"id": entity_id},
        ).mappings()
        return [dict(row) for row in rows]
