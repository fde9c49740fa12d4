"""The change-log contract: the writing transaction's id comes back with its change rows."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from shared.changes import CHANGES_XID, ChangeOp, ChangeRecord, record_changes
from shared.consistency import current_consistency_xid


def test_the_token_names_the_writing_transaction_and_is_forgotten_after_it(db: Engine) -> None:
    record = ChangeRecord("user", uuid.uuid4(), ChangeOp.CREATED, None, {"seeded": True})
    with Session(db) as session:
        record_changes(session, [record, record])
        xid = current_consistency_xid(session)
        own = session.execute(text("SELECT pg_current_xact_id()::text")).scalar_one()
        assert xid == int(own)
        session.commit()
        assert CHANGES_XID not in session.info
        # The next transaction of the same session wrote nothing: it names the newest id
        # that may have finished, not the old one.
        assert current_consistency_xid(session) >= xid
        session.rollback()
        assert CHANGES_XID not in session.info
