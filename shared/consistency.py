"""The consistency token of DESIGN.md §5: which write a query must wait for.

A token names a transaction id T. A projection "includes" the token once it has caught up
to a watermark (snapshot xmin) greater than T: every transaction with an id <= T has then
finished, and its changes are behind the checkpoint. A transaction that committed before
this one began has a smaller id, so waiting for a token also waits for it.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.changes import CHANGES_XID, Xid8

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


_OWN_XID_AND_XMAX = select(
    func.pg_current_xact_id_if_assigned(type_=Xid8()),
    func.pg_snapshot_xmax(func.pg_current_snapshot(), type_=Xid8()),
)


def current_consistency_xid(session: Session) -> int:
    """The id of this transaction if it wrote, else the last id any finished one can have."""
    written = session.info.get(CHANGES_XID)
    if written is not None:
        return int(written)
    own, xmax = session.execute(_OWN_XID_AND_XMAX).one()
    return int(own) if own is not None else int(xmax) - 1
