"""The parameters of delta sync and its cursor.

A cursor holds where the caller stands in the feed (the last row they were given), where the
feed stood when they started without a cursor (tombstones up to there are left out: they
cannot hold those entities), the kinds they asked for, and a fingerprint of what they may
see. It is signed for one organization and one caller: another's is a 422.
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
class SyncCursor:
    after: Position
    snapshot: tuple[int, int]  # the feed's bound when the caller started without a cursor
    kinds: tuple[str, ...]
    view: str


@dataclass(frozen=True)
class SyncRequest:
    kinds: tuple[str, ...]
    limit: int
    cursor: SyncCursor | None


def view_of(org: OrgReader) -> str:
    """A fingerprint of whom the caller sees: a cursor issued for another view starts over."""
    if org.visible_user_ids is None:
        return "all"
    users = ",".join(sorted(str(user_id) for user_id in org.visible_user_ids))
    return hashlib.sha256(users.encode()).hexdigest()[:16]


def _purpose(org: OrgReader) -> str:
    return f"sync:{org.org_id}:{org.reader.id}"


def encode_sync_cursor(org: OrgReader, cursor: SyncCursor) -> str:
    after = cursor.after
    values: list[Any] = [
        str(after.tx),
        after.change_id,
        after.kind,
        str(after.owner_id),
        str(after.entity_id),
        [str(cursor.snapshot[0]), cursor.snapshot[1]],
        list(cursor.kinds),
        cursor.view,
    ]
    secret = get_settings().secret_key.get_secret_value()
    return encode_cursor(values, secret=secret, purpose=_purpose(org))


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
        tx, change_id, kind, owner_id, entity_id, snapshot, kinds, view = values
        after = Position(
            int(tx), int(change_id), str(kind), uuid.UUID(owner_id), uuid.UUID(entity_id)
        )
        return SyncCursor(
            after, (int(snapshot[0]), int(snapshot[1])), tuple(str(k) for k in kinds), str(view)
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
