"""`copy_rows`: COPY inside the session's transaction, errors as SQLAlchemy's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db import copy_rows
from tests.factories import make_org

COPY_TAGS = "COPY tags (id, org_id, name) FROM STDIN"


def test_rows_are_written_in_the_sessions_transaction(db: Engine) -> None:
    org = make_org(db)
    names = [f"copied-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    with Session(db) as session:
        copy_rows(session, COPY_TAGS, ((uuid.uuid4(), org.id, name) for name in names))
        seen = session.execute(
            text("SELECT count(*) FROM tags WHERE org_id = :org"), {"org": org.id}
        ).scalar_one()
        assert seen == 3  # visible inside the transaction
        session.rollback()
    with db.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM tags WHERE org_id = :org"), {"org": org.id}
        ).scalar_one()
    assert left == 0  # and gone with it


def test_a_violated_constraint_is_sqlalchemys_integrity_error(db: Engine) -> None:
    org = make_org(db)
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    row = (
        uuid.uuid4(), org.id, org.owner.id, None, None, "", False,
        start, start - timedelta(hours=1), 0, False,
    )  # fmt: skip
    statement = (
        "COPY time_entries (id, org_id, user_id, project_id, task_id, description, billable,"
        " start_at, end_at, hourly_rate_amount, no_overlap) FROM STDIN"
    )
    with Session(db) as session, pytest.raises(IntegrityError) as raised:
        copy_rows(session, statement, [row])
    orig = raised.value.orig
    assert isinstance(orig, psycopg.errors.CheckViolation)
    assert orig.diag.constraint_name == "ck_time_entries_end_after_start"
