"""The parameters of delta sync and its cursor.

A cursor holds where the caller stands in the feed (the last row they were given), where the
feed stood when they started without a cursor (tombstones up to there are left out: they
cannot hold those entities), the kinds they asked for, and whom they see: everyone, the
users themselves (up to MAX_CARRIED_USERS), or a fingerprint of a larger set. When whom
they see changed (a team, a role), the next pages re-send what that changes (`Redo`)
before the feed goes on; with a fingerprint only, the caller starts over (`reset`). It is
signed for one organization and one caller: another's is a 422.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

from projections.models import SYNC_KINDS
from query_api.dependencies import OrgReader, OrgReaderDep, consistent_with
from shared.config import get_settings
from shared.errors import ValidationFailedError
from shared.pagination import InvalidCursorError, decode_cursor, encode_cursor

# The projections a page reads: the feed, and the entities' data.
SYNC_READS = ("catalog", "entries", "sync")
SyncConsistent = Annotated[None, Depends(consistent_with(SYNC_READS))]

DEFAULT_LIMIT, MAX_LIMIT = 500, 1000
# Whom a caller sees travels in their cursor up to this many users (about 37 characters
# each); beyond it, a fingerprint, and a change of view starts the caller over.
MAX_CARRIED_USERS = 100
_NIL = uuid.UUID(int=0)


@dataclass(frozen=True, order=True)
class Position:
    """A row's place in the feed's order: its change, then its kind, owner and id."""

    tx: int
    change_id: int
    kind: str = ""
    owner_id: uuid.UUID = _NIL
    entity_id: uuid.UUID = _NIL

    @property
    def change(self) -> tuple[int, int]:
        return (self.tx, self.change_id)


START = Position(0, -1)  # before every row


@dataclass(frozen=True)
class View:
    """Whom a caller sees: everyone (`users` None), these users, or a set too large to
    carry (`users` None and not `everyone`): its fingerprint only."""

    fingerprint: str
    everyone: bool
    users: frozenset[uuid.UUID] | None

    @classmethod
    def of(cls, org: OrgReader) -> View:
        visible = org.visible_user_ids
        if visible is None:
            return cls("all", True, None)
        text = ",".join(sorted(str(user_id) for user_id in visible))
        fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        return cls(fingerprint, False, visible if len(visible) <= MAX_CARRIED_USERS else None)

    @property
    def known(self) -> bool:
        return self.everyone or self.users is not None

    def owners_changed(self, other: View) -> frozenset[uuid.UUID] | None:
        """The users whose entries one view shows and the other not; None: anyone's."""
        if self.users is None or other.users is None:
            return None
        return self.users ^ other.users


@dataclass(frozen=True)
class Redo:
    """A change of view being sent: the rows of these kinds (entries of `owners` only; None:
    anyone's) from the start of the feed, resolved for the new view, up to `after`."""

    after: Position
    kinds: tuple[str, ...]
    owners: frozenset[uuid.UUID] | None


@dataclass(frozen=True)
class SyncCursor:
    after: Position
    snapshot: tuple[int, int]  # the feed's bound when the caller started without a cursor
    origin: tuple[int, int]  # the organization's horizon then (projections/sync.py)
    kinds: tuple[str, ...]
    view: View  # whom the caller's copy is for (once `redo` is done)
    redo: Redo | None = None


@dataclass(frozen=True)
class SyncRequest:
    kinds: tuple[str, ...]
    limit: int
    cursor: SyncCursor | None


def _purpose(org: OrgReader) -> str:
    return f"sync:{org.org_id}:{org.reader.id}"


def _position(position: Position) -> list[Any]:
    return [
        str(position.tx),
        position.change_id,
        position.kind,
        str(position.owner_id),
        str(position.entity_id),
    ]


def _users(users: frozenset[uuid.UUID] | None) -> list[str] | None:
    return None if users is None else sorted(str(user_id) for user_id in users)


def encode_sync_cursor(org: OrgReader, cursor: SyncCursor) -> str:
    view, redo = cursor.view, cursor.redo
    values: list[Any] = [
        _position(cursor.after),
        [str(cursor.snapshot[0]), cursor.snapshot[1]],
        [str(cursor.origin[0]), cursor.origin[1]],
        list(cursor.kinds),
        [view.fingerprint, view.everyone, _users(view.users)],
        None if redo is None else [_position(redo.after), list(redo.kinds), _users(redo.owners)],
    ]
    secret = get_settings().secret_key.get_secret_value()
    return encode_cursor(values, secret=secret, purpose=_purpose(org))


def _decoded_position(values: list[Any]) -> Position:
    tx, change_id, kind, owner_id, entity_id = values
    return Position(int(tx), int(change_id), str(kind), uuid.UUID(owner_id), uuid.UUID(entity_id))


def _decoded_users(values: list[str] | None) -> frozenset[uuid.UUID] | None:
    return None if values is None else frozenset(uuid.UUID(value) for value in values)


def _invalid(field: str, message: str) -> ValidationFailedError:
    return ValidationFailedError(
        f"Invalid parameter '{field}': {message}",
        details=[{"field": field, "location": "query", "message": message, "type": "value_error"}],
    )


def decode_sync_cursor(org: OrgReader, text: str) -> SyncCursor:
    secret = get_settings().secret_key.get_secret_value()
    try:
        values = decode_cursor(text, secret=secret, purpose=_purpose(org))
    except InvalidCursorError as exc:
        raise _invalid(
            "cursor", f"not a sync cursor of this organization and caller ({exc})"
        ) from exc
    try:
        after, snapshot, origin, kinds, (fingerprint, everyone, users), redo = values
        view = View(str(fingerprint), bool(everyone), _decoded_users(users))
        return SyncCursor(
            _decoded_position(after),
            (int(snapshot[0]), int(snapshot[1])),
            (int(origin[0]), int(origin[1])),
            tuple(str(kind) for kind in kinds),
            view,
            None
            if redo is None
            else Redo(
                _decoded_position(redo[0]),
                tuple(str(kind) for kind in redo[1]),
                _decoded_users(redo[2]),
            ),
        )
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise _invalid("cursor", "malformed cursor") from exc


def _kinds(entities: str | None) -> tuple[str, ...]:
    if entities is None or not entities.strip():
        return SYNC_KINDS
    asked = {name.strip() for name in entities.split(",") if name.strip()}
    unknown = sorted(asked - set(SYNC_KINDS))
    if unknown:
        raise _invalid(
            "entities",
            f"unknown {', '.join(unknown)}; known: {', '.join(SYNC_KINDS)}",
        )
    return tuple(kind for kind in SYNC_KINDS if kind in asked)


def sync_request(
    org: OrgReaderDep,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous answer; none to start with everything"),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Changes per answer, at most")
    ] = DEFAULT_LIMIT,
    entities: Annotated[
        str | None,
        Query(description="Comma-separated kinds to sync (default all): " + ", ".join(SYNC_KINDS)),
    ] = None,
) -> SyncRequest:
    kinds = _kinds(entities)
    decoded = decode_sync_cursor(org, cursor) if cursor else None
    if decoded is not None and decoded.kinds != kinds:
        raise _invalid(
            "entities",
            f"the cursor was issued for entities={','.join(decoded.kinds)}; "
            "ask for the same kinds, or start again without a cursor",
        )
    return SyncRequest(kinds, limit, decoded)


SyncRequestDep = Annotated[SyncRequest, Depends(sync_request)]
