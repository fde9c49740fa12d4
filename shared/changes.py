"""The change log (transactional outbox) of DESIGN.md §3 and the consistency token.

Every command appends one row per changed aggregate to `changes` in the same transaction
as its normalized rows. `tx` is the writing transaction's id (`pg_current_xact_id()`);
readers order by `(tx, id)` and only read rows with `tx` below the snapshot's xmin, so a
row that commits late can never be skipped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Index,
    String,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column
from sqlalchemy.types import UserDefinedType

from shared.db import Base, copy_rows

CHANGES_WRITTEN = "evotrack.changes_written"
CHANGES_XID = "evotrack.changes_xid"  # the writing transaction's id, while it lasts


class Xid8(UserDefinedType[int]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


class ChangeOp(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class Change(Base):
    __tablename__ = "changes"
    __table_args__ = (Index("ix_changes_tx_id", "tx", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tx: Mapped[int] = mapped_column(
        Xid8(), server_default=text("pg_current_xact_id()"), nullable=False
    )
    org_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    entity: Mapped[str] = mapped_column(String(40), nullable=False)
    entity_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    op: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


@dataclass(frozen=True)
class ChangeRecord:
    """One changed aggregate. `payload` holds `old` and `new` values of what projections use."""

    entity: str
    entity_id: uuid.UUID
    op: ChangeOp
    org_id: uuid.UUID | None
    payload: dict[str, Any] = field(default_factory=dict)
    # The payload as JSON text, made with the record: a bulk create builds its records
    # while COPY streams the entries, so the serializing overlaps PostgreSQL's work.
    payload_json: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload_json", _json(self.payload))


def record_changes(session: Session, records: list[ChangeRecord]) -> None:
    """Append change rows in one statement, inside the caller's transaction."""
    if not records:
        return
    if len(records) >= COPY_FROM:
        rows = ((r.org_id, r.entity, r.entity_id, r.op.value, r.payload_json) for r in records)
        copy_rows(session, _COPY_CHANGES, rows)
        xid = session.execute(text("SELECT pg_current_xact_id()::text")).scalar_one()
    else:
        xid = session.execute(
            _INSERT_CHANGES,
            {
                "org_ids": [r.org_id for r in records],
                "entities": [r.entity for r in records],
                "entity_ids": [r.entity_id for r in records],
                "ops": [r.op.value for r in records],
                "payloads": [r.payload_json for r in records],
            },
        ).scalar_one()
    session.info[CHANGES_XID] = int(xid)
    session.info[CHANGES_WRITTEN] = True


def _json(payload: dict[str, Any]) -> str:
    """A payload as JSON text for the jsonb column (pydantic-core: ~5× json.dumps)."""
    return to_json(payload).decode()


# From this many rows on, COPY (formatted in C) beats the INSERT's arrays (dumped in Python)
# by more than its extra round trip for the transaction id.
COPY_FROM = 50
_COPY_CHANGES = "COPY changes (org_id, entity, entity_id, op, payload) FROM STDIN"

# Below it, one statement text for any number of rows (a multi-row VALUES is compiled anew for each
# count), and the transaction id comes back with it: the consistency token needs no round
# trip of its own (current_consistency_xid).
_INSERT_CHANGES = text(
    "WITH written AS (INSERT INTO changes (org_id, entity, entity_id, op, payload)"
    " SELECT * FROM unnest(CAST(:org_ids AS uuid[]), CAST(:entities AS text[]),"
    " CAST(:entity_ids AS uuid[]), CAST(:ops AS text[]), CAST(:payloads AS jsonb[])))"
    " SELECT pg_current_xact_id()::text"
)


@event.listens_for(Session, "after_transaction_end")
def _forget_xid(session: Session, transaction: SessionTransaction) -> None:
    """A session used again must not hand out the id of a transaction that has ended."""
    if transaction.parent is None:
        session.info.pop(CHANGES_XID, None)


def record_change(session: Session, record: ChangeRecord) -> None:
    record_changes(session, [record])


# --- Consistency tokens -------------------------------------------------------------
#
# A token names a transaction id T. A projection "includes" the token once it has caught
# up to a watermark (snapshot xmin) greater than T: every transaction with an id <= T has
# then finished, and its changes are behind the checkpoint. A transaction that committed
# before this one began has a smaller id, so waiting for a token also waits for it.

TOKEN_PREFIX = "ct1."


def encode_consistency_token(xid: int) -> str:
    return f"{TOKEN_PREFIX}{xid:x}"


def decode_consistency_token(token: str) -> int | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    try:
        value = int(token[len(TOKEN_PREFIX) :], 16)
    except ValueError:
        return None
    return value if value >= 0 else None


def current_consistency_xid(session: Session) -> int:
    """The id of this transaction if it wrote, else the last id any finished one can have."""
    written = session.info.get(CHANGES_XID)
    if written is not None:
        return int(written)
    row = session.execute(
        text(
            "SELECT pg_current_xact_id_if_assigned()::text, "
            "pg_snapshot_xmax(pg_current_snapshot())::text"
        )
    ).one()
    own, xmax = row
    return int(own) if own is not None else int(xmax) - 1


# Let reflection (alembic check) recognize the column type.
ischema_names["xid8"] = Xid8


# --- Projection lag ------------------------------------------------------------------------
#
# One query for the CLI, /metrics and /system/projections. `names` lists the projections to
# report (a projection without a checkpoint yet shows as lagging from the start); without
# it, every projection that has a checkpoint.

_LAG = """
    WITH names AS (
        SELECT unnest(CAST(:names AS text[])) AS name WHERE CAST(:names AS text[]) IS NOT NULL
        UNION SELECT name FROM projection_checkpoints WHERE CAST(:names AS text[]) IS NULL
    ), snapshot AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
    SELECT n.name,
           COALESCE(p.tx, '0'::xid8)::text AS tx,
           COALESCE(p.change_id, 0) AS change_id,
           COALESCE(p.watermark, '0'::xid8)::text AS applied_watermark,
           s.xmin::text AS watermark,
           p.updated_at, p.last_error, p.last_error_at,
           pending.count AS lag_changes,
           COALESCE(EXTRACT(EPOCH FROM now() - pending.oldest), 0)::float AS lag_seconds,
           (SELECT count(*) FROM projection_dead_letters d
             WHERE d.projection = n.name AND d.resolved_at IS NULL) AS dead_letters
    FROM names n CROSS JOIN snapshot s
    LEFT JOIN projection_checkpoints p ON p.name = n.name
    CROSS JOIN LATERAL (
        SELECT count(*) AS count, min(c.created_at) AS oldest FROM changes c
        -- Every committed change not yet applied, including those a transaction still
        -- running elsewhere holds behind the watermark: they are lag all the same.
        WHERE (c.tx, c.id) > (COALESCE(p.tx, '0'::xid8), COALESCE(p.change_id, 0))
    ) pending
    ORDER BY n.name
"""


def projection_lag(
    connection: Session | Connection, names: list[str] | None = None
) -> list[dict[str, Any]]:
    """Per projection: checkpoint (tx, change_id), applied and current watermark, lag in
    changes and seconds, open dead letters, last error."""
    rows = connection.execute(text(_LAG), {"names": names}).mappings()
    return [dict(row) for row in rows]


# --- Replica replay lag --------------------------------------------------------------------
#
# On a streaming replica the query above runs against what the replica has replayed: the
# change log and the checkpoints are frozen together, so a replica whose replay is paused or
# behind shows no projection lag at all. Its own replay lag has to be reported beside it.

_REPLAY = """
    SELECT pg_get_wal_replay_pause_state() <> 'not paused' AS replay_paused,
           CASE WHEN received IS NOT NULL  -- replay may run ahead of streaming at start
                THEN GREATEST(pg_wal_lsn_diff(received, replayed), 0)
           END::bigint AS lag_bytes,
           CASE WHEN received IS NULL THEN NULL
                WHEN replayed >= received THEN 0.0
                ELSE GREATEST(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)
           END::float AS lag_seconds,
           pg_last_xact_replay_timestamp() AS last_replayed_at
    FROM (SELECT pg_last_wal_receive_lsn() AS received, pg_last_wal_replay_lsn() AS replayed) wal
"""


def replica_lag(connection: Session | Connection) -> dict[str, Any] | None:
    """Where a streaming replica's replay stands, or None on a primary.

    `lag_bytes`: WAL received from the primary and not yet replayed. `lag_seconds`: 0 when
    replay has caught up with everything received; else the time since the last replayed
    transaction committed on the primary, an upper bound (the WAL waiting may be younger,
    if the primary was idle before it). Both are None while the replica receives nothing
    (not streaming yet, or replaying from an archive)."""
    if not connection.execute(text("SELECT pg_is_in_recovery()")).scalar_one():
        return None
    row = connection.execute(text(_REPLAY)).mappings().one()
    return {"in_recovery": True, **row}
