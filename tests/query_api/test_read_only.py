"""The query API's sessions are read-only transactions: a read path cannot write."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import InternalError, ProgrammingError


def test_a_query_session_cannot_write(environment: None) -> None:
    from shared.db import read_sessionmaker

    with read_sessionmaker()() as session:
        assert session.execute(text("SHOW transaction_read_only")).scalar_one() == "on"
        with pytest.raises((InternalError, ProgrammingError), match="read-only transaction"):
            session.execute(text("CREATE TEMP TABLE should_fail (x int)"))
