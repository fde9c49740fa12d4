"""The test harness's background projector: a projection that fails shows its error in
the test, rather than a read that waits out CONSISTENCY_WAIT_SECONDS and answers 503."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

import projections.runner
from tests.conftest import BackgroundProjector, ProjectorFailed, running
from tests.factories import OrgHandle, make_org
from tests.projections.conftest import drain


def fail_entries(
    monkeypatch: pytest.MonkeyPatch, next_error: Callable[[], Exception | None]
) -> None:
    """Make each advance of the entries projection raise `next_error()` unless it is None
    (the catalog goes on, so users and organizations stay readable)."""
    real = projections.runner.advance

    def advance(sessions: Any, projector: Any, **kwargs: Any) -> Any:
        error = next_error() if projector.name == "entries" else None
        if error is not None:
            raise error
        return real(sessions, projector, **kwargs)

    monkeypatch.setattr(projections.runner, "advance", advance)


def write_entry(api: httpx.Client, org: OrgHandle) -> str:
    """A time entry of the owner's; the write's consistency token."""
    body = {"start_at": "2026-05-04T08:00:00Z", "end_at": "2026-05-04T09:00:00Z"}
    response = api.post(org.path("/time-entries"), json=body, headers=org.owner.headers)
    assert response.status_code == 201, response.text
    return response.headers["X-Consistency-Token"]


def read_entries(qapi: httpx.Client, org: OrgHandle, token: str) -> httpx.Response:
    headers = {**org.owner.headers, "X-Consistency-Token": token}
    return qapi.get(org.path("/time-entries"), headers=headers)


def test_a_read_waiting_for_a_failing_projection_fails_with_its_error(
    api: httpx.Client, qapi: httpx.Client, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = make_org(db)
    drain(sessionmaker(bind=db))  # the owner can sign in to the query API
    broken = RuntimeError("the entries projection is broken")
    fail_entries(monkeypatch, lambda: broken)

    def read_while_it_runs() -> None:
        with running(BackgroundProjector(db)):
            token = write_entry(api, org)
            with pytest.raises(ProjectorFailed) as while_reading:
                read_entries(qapi, org, token)
            assert while_reading.value.__cause__ is broken
            assert "entries" in str(while_reading.value)

    with pytest.raises(ProjectorFailed) as at_teardown:
        read_while_it_runs()
    # The teardown tried once more: the error had not healed, so the test fails with it.
    assert at_teardown.value.__cause__ is broken


def test_a_failure_that_heals_does_not_fail_the_test(
    api: httpx.Client, qapi: httpx.Client, db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = make_org(db)
    drain(sessionmaker(bind=db))
    # Fewer failures in a row than make a projection stuck, then the real advance.
    errors = [RuntimeError("a blip")] * (BackgroundProjector.STUCK_AFTER - 1)
    fail_entries(monkeypatch, lambda: errors.pop() if errors else None)

    with running(BackgroundProjector(db)):
        token = write_entry(api, org)
        response = read_entries(qapi, org, token)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]) == 1
    assert errors == []  # it did fail, and healed
