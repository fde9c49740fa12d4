"""SQL of delta sync: the feed's rows after a cursor, and how far it may be read.

A page is one index range per kind (and, for a caller who sees some users only, per user of
theirs for entries), each stopping after `limit + 1` rows, merged in the feed's order: its
cost does not grow with the history behind the cursor or beyond the page.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Select, Uuid, literal, select, tuple_, union_all

from projections.models import SYNC_TIME_ENTRY, proj_sync_feed, proj_sync_horizons
from query_api.modules.sync.dependencies import SYNC_READS, Position
from shared.changes import Xid8
from shared.checkpoints import checkpoints_table
from shared.db import ReadSession

f = proj_sync_feed.c
# The smallest and the largest id: a range that starts before or after every id of a change.
_MIN, _MAX = uuid.UUID(int=0), uuid.UUID(int=(1 << 128) - 1)


@dataclass(frozen=True)
class FeedRow:
    kind: str
    owner_id: uuid.UUID
    entity_id: uuid.UUID
    tx: int
    change_id: int

    @property
    def position(self) -> Position:
        return Position(self.tx, self.change_id, self.kind, self.owner_id, self.entity_id)


def readable_bound(session: ReadSession) -> tuple[int, int] | None:
    """The last change that the feed and the projections holding the entities' data have
    all applied: rows up to it are final and their data includes them. None before all of
    them have a checkpoint."""
    rows = session.execute(
        select(checkpoints_table.c.tx, checkpoints_table.c.change_id).where(
            checkpoints_table.c.name.in_(SYNC_READS)
        )
    ).all()
    if len(rows) < len(SYNC_READS):
        return None
    return min((int(tx), int(change_id)) for tx, change_id in rows)


def horizon(session: ReadSession, org_id: uuid.UUID) -> tuple[int, int]:
    """Up to where the feed no longer holds every tombstone of the organization."""
    row = session.execute(
        select(proj_sync_horizons.c.tx, proj_sync_horizons.c.change_id).where(
            proj_sync_horizons.c.org_id == org_id
        )
    ).one_or_none()
    return (0, 0) if row is None else (int(row.tx), int(row.change_id))


def _after(columns: Sequence[Any], values: Sequence[Any], types: Sequence[Any]) -> Any:
    return tuple_(*columns) > tuple_(
        *(literal(value, type_) for value, type_ in zip(values, types, strict=True))
    )


def _one_range(
    org_id: uuid.UUID,
    kind: str,
    owner_id: uuid.UUID | None,
    after: Position,
    bound: tuple[int, int],
    limit: int,
) -> Select[Any]:
    """The next rows of one kind (and one owner, or every owner when None) after `after`,
    in the feed's order, up to `bound`."""
    rows = select(f.kind, f.owner_id, f.entity_id, f.tx, f.change_id).where(
        f.org_id == org_id,
        f.kind == kind,
        tuple_(f.tx, f.change_id)
        <= tuple_(literal(bound[0], Xid8()), literal(bound[1], BigInteger)),
    )
    if owner_id is None:
        # Every owner, on the (org, kind, tx, change_id, owner, entity) index.
        if kind == after.kind:
            start = (after.owner_id, after.entity_id)
        else:
            start = (_MIN, _MIN) if kind > after.kind else (_MAX, _MAX)
        rows = rows.where(
            _after(
                (f.tx, f.change_id, f.owner_id, f.entity_id),
                (after.tx, after.change_id, *start),
                (Xid8(), BigInteger(), Uuid(), Uuid()),
            )
        ).order_by(f.tx, f.change_id, f.owner_id, f.entity_id)
    else:
        # One owner, on the (org, kind, owner, tx, change_id, entity) index.
        mine, theirs = (kind, owner_id), (after.kind, after.owner_id)
        start_id = after.entity_id if mine == theirs else _MIN if mine > theirs else _MAX
        rows = rows.where(
            f.owner_id == owner_id,
            _after(
                (f.tx, f.change_id, f.entity_id),
                (after.tx, after.change_id, start_id),
                (Xid8(), BigInteger(), Uuid()),
            ),
        ).order_by(f.tx, f.change_id, f.entity_id)
    return rows.limit(limit)


def feed_rows(session: ReadSession, statement: Select[Any]) -> list[FeedRow]:
    """The rows a `feed_statement` selects."""
    return [
        FeedRow(row.kind, row.owner_id, row.entity_id, int(row.tx), int(row.change_id))
        for row in session.execute(statement)
    ]


def feed_statement(
    org_id: uuid.UUID,
    kinds: Sequence[str],
    users: frozenset[uuid.UUID] | None,
    after: Position,
    bound: tuple[int, int],
    limit: int,
) -> Select[Any]:
    """Up to `limit` rows after `after` and up to `bound`, in the feed's order. Entries of
    the users in `users` only (None: everyone's)."""
    ranges: list[Select[Any]] = []
    for kind in kinds:
        if kind != SYNC_TIME_ENTRY or users is None:  # rows everyone's, or a caller sees all
            ranges.append(_one_range(org_id, kind, None, after, bound, limit))
        else:
            ranges.extend(
                _one_range(org_id, kind, user_id, after, bound, limit) for user_id in sorted(users)
            )
    merged = union_all(*(r.subquery().select() for r in ranges)).subquery("merged")
    return (
        select(merged)
        .order_by(
            merged.c.tx,
            merged.c.change_id,
            merged.c.kind.collate("C"),  # as Python orders the kinds (Position)
            merged.c.owner_id,
            merged.c.entity_id,
        )
        .limit(limit)
    )
