"""The wake-up job: every registered projection advances, a failing one does not hold
the others back, and the job reports the failure."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence
from types import ModuleType

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from projections.projection import ChangeRow
from tests.projections.test_runner import BareProjection, named
from worker.jobs import ProjectionsFailedError, advance_all_projections, registered_projections


class CountingProjection(BareProjection):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        self.seen.extend(change.id for change in changes)


class UnreachableProjection(CountingProjection):
    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        # As SQLAlchemy reports a lost connection: invalidated (psycopg marks it broken).
        raise OperationalError(
            "SELECT 1",
            {},
            ConnectionError("the read model is unreachable"),
            connection_invalidated=True,
        )


def counting(kind: type[CountingProjection] = CountingProjection) -> CountingProjection:
    """A fresh one, with a checkpoint of its own."""
    return named(kind, f"test-jobs-{uuid.uuid4().hex[:8]}")()


def use_registry(monkeypatch: pytest.MonkeyPatch, projectors: list[object] | None) -> None:
    if projectors is None:
        monkeypatch.setitem(sys.modules, "projections.registry", None)  # import fails
        return
    registry = ModuleType("projections.registry")
    registry.PROJECTIONS = projectors  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "projections.registry", registry)


def write_change(db: Engine) -> int:
    with db.begin() as conn:
        return int(
            conn.execute(
                text(
                    "INSERT INTO changes (entity, entity_id, op, payload)"
                    " VALUES ('jobs_test', :id, 'created', '{}'::jsonb) RETURNING id"
                ),
                {"id": uuid.uuid4()},
            ).scalar_one()
        )


def test_without_a_registry_there_is_nothing_to_advance(monkeypatch: pytest.MonkeyPatch) -> None:
    use_registry(monkeypatch, None)
    assert registered_projections() == []
    assert advance_all_projections() == 0


def test_every_projection_advances_and_a_failure_fails_the_job(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    change_id = write_change(db)
    healthy, broken = counting(), counting(UnreachableProjection)
    use_registry(monkeypatch, [broken, healthy])

    # Other tests' open transactions may hold the watermark back for a moment.
    failures: list[list[str]] = []
    deadline = time.monotonic() + 60  # bounds a failure only
    while (change_id not in healthy.seen or not failures) and time.monotonic() < deadline:
        try:
            advance_all_projections()
        except ProjectionsFailedError as exc:
            failures.append(exc.names)
        time.sleep(0.05)

    assert change_id in healthy.seen  # the broken projection did not hold it back
    assert failures
    assert all(names == [broken.name] for names in failures)
    # Checkpoints are (tx, id) positions: ids alone are not ordered by commit.
    with db.connect() as conn:
        passed: dict[str, bool] = dict(
            conn.execute(
                text(
                    "SELECT p.name, (p.tx, p.change_id) >= (c.tx, c.id)"
                    " FROM projection_checkpoints p, changes c"
                    " WHERE c.id = :c AND p.name IN (:a, :b)"
                ),
                {"c": change_id, "a": healthy.name, "b": broken.name},
            ).all()
        )
    assert passed[healthy.name]
    assert not passed.get(broken.name, False)
