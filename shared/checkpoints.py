"""The projections' bookkeeping (DESIGN.md §4) and where they stand.

`ProjectionCheckpoint` and `ProjectionDeadLetter` are written by the runner
(projections/runner.py); the status query below is read by the CLI, /metrics of both
APIs and the query API's /system/projections, which may import only shared/ and
projections.models: hence here, beside the change log it measures.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.changes import Xid8, changes_table
from shared.db import Base


class ProjectionCheckpoint(Base):
    """How far one projection has applied the change log.

    `(tx, change_id)` is the last change applied. `watermark` is a snapshot xmin such that
    every change of a transaction with an id below it has been applied: a consistency
    token T is satisfied once `watermark > T`.
    """

    __tablename__ = "projection_checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    tx: Mapped[int] = mapped_column(Xid8(), nullable=False, server_default=text("'0'::xid8"))
    change_id: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    watermark: Mapped[int] = mapped_column(Xid8(), nullable=False, server_default=text("'0'::xid8"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ProjectionDeadLetter(Base):
    """A change a projection could not apply; skipped until `evotrack projections retry`."""

    __tablename__ = "projection_dead_letters"
    __table_args__ = (
        Index(
            "uq_projection_dead_letters_open",
            "projection",
            "change_id",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    projection: Mapped[str] = mapped_column(String(64), nullable=False)
    change_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tx: Mapped[int] = mapped_column(Xid8(), nullable=False)
    error: Mapped[str] = mapped_column(Text, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# Their Core tables: the runner's statements run once per batch and need no ORM layer.
checkpoints_table = typing.cast(Table, ProjectionCheckpoint.__table__)
dead_letters_table = typing.cast(Table, ProjectionDeadLetter.__table__)

SNAPSHOT_XMIN = func.pg_snapshot_xmin(func.pg_current_snapshot(), type_=Xid8())


def applied_position() -> tuple[ColumnElement[int], ColumnElement[int]]:
    """The `(tx, change_id)` of a checkpoint row, `(0, 0)` where the outer join found none."""
    return (
        func.coalesce(checkpoints_table.c.tx, literal(0, Xid8())),
        func.coalesce(checkpoints_table.c.change_id, 0),
    )


# The changes beyond a projection's checkpoint: every committed change not yet applied,
# including those a transaction still running elsewhere holds behind the watermark.
UNAPPLIED = tuple_(changes_table.c.tx, changes_table.c.id) > tuple_(*applied_position())


# --- Where each projection stands ------------------------------------------------------------


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    checkpoint_tx: int
    checkpoint_change_id: int
    applied_watermark: int
    watermark: int
    lag_changes: int
    lag_seconds: float
    dead_letters: int
    last_error: str | None
    last_error_at: datetime | None
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _status(names: Select[str]) -> Select[Any]:
    """Per projection of `names`: its checkpoint, the applied and the current watermark, the
    lag in changes and seconds, its open dead letters and last error."""
    listed = names.subquery("names")
    checkpoint = checkpoints_table.c
    tx, change_id = applied_position()
    pending = (
        select(func.count().label("changes"), func.min(changes_table.c.created_at).label("oldest"))
        .where(UNAPPLIED)
        .lateral("pending")
    )
    dead_letters = (
        select(func.count())
        .where(
            dead_letters_table.c.projection == listed.c.name,
            dead_letters_table.c.resolved_at.is_(None),
        )
        .scalar_subquery()
    )
    lag_seconds = func.coalesce(extract("epoch", func.now() - pending.c.oldest), 0)
    return (
        select(
            listed.c.name,
            tx.label("checkpoint_tx"),
            change_id.label("checkpoint_change_id"),
            func.coalesce(checkpoint.watermark, literal(0, Xid8())).label("applied_watermark"),
            SNAPSHOT_XMIN.label("watermark"),
            pending.c.changes.label("lag_changes"),
            cast(lag_seconds, Float).label("lag_seconds"),
            dead_letters.label("dead_letters"),
            checkpoint.last_error,
            checkpoint.last_error_at,
            checkpoint.updated_at,
        )
        .select_from(listed)
        .outerjoin(checkpoints_table, checkpoint.name == listed.c.name)
        .join(pending, true())
        .order_by(listed.c.name)
    )


_NAMED = func.unnest(bindparam("names", type_=ARRAY(String))).table_valued("name").render_derived()
_STATUS_OF_NAMED = _status(select(_NAMED.c.name).distinct())
_STATUS_OF_ALL = _status(select(checkpoints_table.c.name))


def projection_status(
    connection: Session | Connection, names: list[str] | None = None
) -> list[ProjectionStatus]:
    """Where each of `names` stands (one without a checkpoint yet lags from the start);
    without `names`, every projection that has a checkpoint. One query for the CLI,
    /metrics and /system/projections."""
    if names is None:
        rows = connection.execute(_STATUS_OF_ALL)
    else:
        rows = connection.execute(_STATUS_OF_NAMED, {"names": names})
    return [ProjectionStatus(**row) for row in rows.mappings()]


# --- Replica replay lag --------------------------------------------------------------------
#
# On a streaming replica the query above runs against what the replica has replayed: the
# change log and the checkpoints are frozen together, so a replica whose replay is paused or
# behind shows no projection lag at all. Its own replay lag has to be reported beside it.


def _replay() -> Select[Any]:
    wal = select(
        func.pg_last_wal_receive_lsn().label("received"),
        func.pg_last_wal_replay_lsn().label("replayed"),
    ).subquery("wal")
    streaming = wal.c.received.is_not(None)  # replay may run ahead of streaming at start
    lag_bytes = case(
        (streaming, func.greatest(func.pg_wal_lsn_diff(wal.c.received, wal.c.replayed), 0))
    )
    lag_seconds = case(
        (~streaming, None),
        (wal.c.replayed >= wal.c.received, 0.0),
        else_=func.greatest(extract("epoch", func.now() - func.pg_last_xact_replay_timestamp()), 0),
    )
    return select(
        (func.pg_get_wal_replay_pause_state() != "not paused").label("replay_paused"),
        cast(lag_bytes, BigInteger).label("lag_bytes"),
        cast(lag_seconds, Float).label("lag_seconds"),
        func.pg_last_xact_replay_timestamp().label("last_replayed_at"),
    ).select_from(wal)


_IN_RECOVERY = select(func.pg_is_in_recovery())
_REPLAY = _replay()


def replica_lag(connection: Session | Connection) -> dict[str, Any] | None:
    """Where a streaming replica's replay stands, or None on a primary.

    `lag_bytes`: WAL received from the primary and not yet replayed. `lag_seconds`: 0 when
    replay has caught up with everything received; else the time since the last replayed
    transaction committed on the primary, an upper bound (the WAL waiting may be younger,
    if the primary was idle before it). Both are None while the replica receives nothing
    (not streaming yet, or replaying from an archive)."""
    if not connection.execute(_IN_RECOVERY).scalar_one():
        return None
    row = connection.execute(_REPLAY).mappings().one()
    return {"in_recovery": True, **row}
