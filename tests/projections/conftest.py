"""Helpers to run projections in tests: advance until the log is drained."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from projections.rebuild import verify
from projections.registry import PROJECTIONS
from projections.runner import advance
from projections.status import projection_status


def drain(sessions: sessionmaker[Session], timeout_seconds: float = 60) -> None:
    """Advance every projection until none lags. Other test workers share the cluster and
    their open transactions hold the watermark back for moments: wait, don't flake. (20 s
    was once too short with the machine at load 6; a projection that is really stuck still
    fails here, only later.)"""
    deadline = time.monotonic() + timeout_seconds
    while True:
        for projector in PROJECTIONS:
            advance(sessions, projector)
        with sessions() as session:
            lagging = [s for s in projection_status(session) if s.lag_changes]
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"projections still lag: {lagging}")
        time.sleep(0.05)


@pytest.fixture
def sessions(db: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=db)


@pytest.fixture
def project_all(sessions: sessionmaker[Session]) -> Callable[[], None]:
    return lambda: drain(sessions)


@pytest.fixture
def assert_verified(sessions: sessionmaker[Session]) -> Callable[..., None]:
    """Verify the projections of the given organizations against a recomputation."""

    def check(*org_ids: uuid.UUID) -> None:
        assert org_ids
        for projector in PROJECTIONS:
            result = verify(sessions, projector.name, org_ids=list(org_ids))
            assert result.ok, [(d.table, d.missing, d.unexpected, d.samples) for d in result.diffs]

    return check
