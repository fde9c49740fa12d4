"""The change log (transactional outbox) of DESIGN.md §3: its model and its writer.

Every command appends one row per changed aggregate to `changes` in the same transaction
as its normalized rows. `tx` is the writing transaction's id (`pg_current_xact_id()`);
readers order by `(tx, id)` and only read rows with `tx` below the snapshot's xmin, so a
row that commits late can never be skipped.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic_core import to_json
from sqlalchemy import (
    ARRAY,
    BigInteger,
    BindParameter,
    ColumnElement,
    DateTime,
    Dialect,
    Index,
    Select,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    cast,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, Session, SessionTransaction, mapped_column
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.types import UserDefinedType

from shared.db import Base, copy_rows

CHANGES_WRITTEN = "evotrack.changes_written"
CHANGES_XID = "evotrack.changes_xid"  # the writing transaction's id, while it lasts


class Xid8(UserDefinedType[int]):
    """A transaction id (`xid8`), an int on the Python side.

    psycopg has no adapter for it: values travel as text, cast to xid8 in the statement
    (PostgreSQL casts neither bigint nor numeric to xid8) and parsed back on the way out."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"

    def bind_expression(self, bindvalue: BindParameter[int]) -> ColumnElement[int]:
        return cast(bindvalue, self)

    def bind_processor(self, dialect: Dialect) -> Callable[[int | None], str | None]:
        return _xid_text

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[str | None], int | None]:
        return _xid_int


def _xid_text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _xid_int(value: str | None) -> int | None:
    return None if value is None else int(value)


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


# Its Core table: statements run once per batch need no ORM layer.
changes_table = typing.cast(Table, Change.__table__)


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
        object.__setattr__(self, "payload_json", json_text(self.payload))


def record_changes(session: Session, records: list[ChangeRecord]) -> None:
    """Append change rows in one statement, inside the caller's transaction."""
    if not records:
        return
    if len(records) >= COPY_FROM:
        rows = ((r.org_id, r.entity, r.entity_id, r.op.value, r.payload_json) for r in records)
        copy_rows(session, _COPY_CHANGES, rows)
        xid = session.execute(_CURRENT_XID).scalar_one()
    else:
        xid = session.execute(_INSERT_CHANGES, change_row_params(records)).scalar_one()
    changes_recorded(session, xid)


def change_row_params(records: list[ChangeRecord]) -> dict[str, list[Any]]:
    """The bind parameters of `with_change_rows` for these records."""
    return {
        "org_ids": [r.org_id for r in records],
        "entities": [r.entity for r in records],
        "entity_ids": [r.entity_id for r in records],
        "ops": [r.op.value for r in records],
        "payloads": [r.payload_json for r in records],
    }


def with_change_rows(statement: Select[Any]) -> Select[Any]:
    """`statement` that also appends the change rows `change_row_params` gives, for a
    command that writes its rows and their change rows in one statement (select
    `CURRENT_XID` in it for the transaction id, then call `changes_recorded`)."""
    return statement.add_cte(_INSERT_CHANGE_ROWS.cte("written"))


def changes_recorded(session: Session, xid: int) -> None:
    """Note that the session's transaction `xid` wrote change rows: the consistency token
    names it, and the doorbell rings after the commit."""
    session.info[CHANGES_XID] = xid
    session.info[CHANGES_WRITTEN] = True


def insert_changes_from(rows: Select[Any]) -> ReturningInsert[tuple[int]]:
    """Change rows from a SELECT of (org_id, entity, entity_id, op, payload), returning the
    transaction id: for a command that writes its rows and their change rows in one
    statement (then `changes_recorded`)."""
    return insert(changes_table).from_select(_COLUMNS, rows).returning(changes_table.c.tx)


def json_text(payload: dict[str, Any]) -> str:
    """A payload as JSON text for the jsonb column (pydantic-core: ~5× json.dumps)."""
    return to_json(payload).decode()


# From this many rows on, COPY (formatted in C) beats the INSERT's arrays (dumped in Python)
# by more than its extra round trip for the transaction id.
COPY_FROM = 50
# Raw SQL: Core has no COPY.
_COPY_CHANGES = "COPY changes (org_id, entity, entity_id, op, payload) FROM STDIN"

# Below it, one statement text for any number of rows (a multi-row VALUES is compiled anew for each
# count), and the transaction id comes back with it: the consistency token needs no round
# trip of its own (current_consistency_xid).
_COLUMNS = ("org_id", "entity", "entity_id", "op", "payload")
_ROWS = (
    func.unnest(
        bindparam("org_ids", type_=ARRAY(Uuid)),
        bindparam("entities", type_=ARRAY(Text)),
        bindparam("entity_ids", type_=ARRAY(Uuid)),
        bindparam("ops", type_=ARRAY(Text)),
        cast(bindparam("payloads", type_=ARRAY(Text)), ARRAY(JSONB)),  # JSON text as it is
    )
    .table_valued(*_COLUMNS)
    .render_derived()
)
CURRENT_XID = func.pg_current_xact_id(type_=Xid8())
_CURRENT_XID = select(CURRENT_XID)
_INSERT_CHANGE_ROWS = insert(changes_table).from_select(_COLUMNS, select(*_ROWS.c))
_INSERT_CHANGES = with_change_rows(_CURRENT_XID)


@event.listens_for(Session, "after_transaction_end")
def _forget_xid(session: Session, transaction: SessionTransaction) -> None:
    """A session used again must not hand out the id of a transaction that has ended."""
    if transaction.parent is None:
        session.info.pop(CHANGES_XID, None)


def record_change(session: Session, record: ChangeRecord) -> None:
    record_changes(session, [record])


# Let reflection (alembic check) recognize the column type.
ischema_names["xid8"] = Xid8
