"""The sweeper trusts a ring only once it has been answered: a projection still behind at
the checkpoint it had when the last sweep rang for it is advanced by the sweeper itself
(a lost job, a worker stuck on a dead connection or busy with something else)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from evotrack.embedded import EmbeddedRedis
from projections.registry import PROJECTIONS
from projections.runner import advance
from projections.webhooks import refresh_log
from shared.config import get_settings
from shared.redis_client import redis_client
from tests.factories import make_org
from tests.worker.test_jobs import counting, use_registry, write_change
from worker.sweeper import Sweeper


@pytest.fixture
def queue(db: Engine, own_redis: EmbeddedRedis) -> Queue:
    """The wake-up queue on a Redis of the test's own, which no worker listens to."""
    return Queue(get_settings().wakeup_queue, connection=redis_client())


def _sweeper() -> Sweeper:
    # RQ is believed to listen: the rings go to Redis, which takes them.
    return Sweeper(get_settings(), threading.Event(), rq_listening=_set(threading.Event()))


def _set(event: threading.Event) -> threading.Event:
    event.set()
    return event


def _repeat_until(done: Callable[[], bool], step: Callable[[], object]) -> None:
    """Other tests' open transactions may hold the watermark back for a while: repeat
    `step` until `done`; the deadline only bounds a failure."""
    deadline = time.monotonic() + 60
    while not done() and time.monotonic() < deadline:
        step()
        time.sleep(0.05)


def test_a_ring_nobody_answers_is_answered_by_the_next_sweep(
    db: Engine, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    projector = counting()
    use_registry(monkeypatch, [projector])
    change_id = write_change(db)
    sweeper = _sweeper()

    assert projector.name in sweeper.sweep()
    assert queue.count == 1  # rung: the job is RQ's to run
    assert projector.seen == []

    # Nobody takes the job: the checkpoint stays where it was rung, so the sweeper projects.
    _repeat_until(lambda: change_id in projector.seen, sweeper.sweep)
    assert change_id in projector.seen


def test_a_projection_that_moved_since_the_ring_is_left_to_rq(
    db: Engine, queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.jobs import advance_with_retries

    projector = counting()
    use_registry(monkeypatch, [projector])
    first = write_change(db)
    sweeper = _sweeper()
    sweeper.sweep()
    # What the worker's job does with the ring.
    _repeat_until(lambda: first in projector.seen, lambda: advance_with_retries(projector))
    seen = list(projector.seen)
    assert first in seen
    write_change(db)  # behind again, but from a checkpoint that moved

    sweeper.sweep()
    assert projector.seen == seen  # the sweeper rang again instead of projecting
    assert queue.count == 2


def test_the_sweeper_prunes_sync_tombstones_past_the_retention(db: Engine) -> None:
    """A tombstone older than SYNC_RETENTION_DAYS goes and moves its organization's horizon;
    a younger one and a live row stay."""
    org_id = uuid.uuid4()
    rows = [  # (entity, gone, age in days, change_id)
        (uuid.uuid4(), True, 40, 11),
        (uuid.uuid4(), True, 2, 12),
        (uuid.uuid4(), False, 40, 13),
    ]
    with db.begin() as conn:
        for entity_id, gone, days, change_id in rows:
            conn.execute(
                text(
                    "INSERT INTO proj_sync_feed"
                    " (org_id, kind, owner_id, entity_id, tx, change_id, gone, changed_at)"
                    " VALUES (:org, 'tag', '00000000-0000-0000-0000-000000000000', :id,"
                    "  '5'::xid8, :change_id, :gone, now() - make_interval(days => :days))"
                ),
                {
                    "org": org_id,
                    "id": entity_id,
                    "change_id": change_id,
                    "gone": gone,
                    "days": days,
                },
            )
    assert get_settings().sync_retention_days == 30
    assert _sweeper().prune_sync_tombstones() >= 1
    with db.connect() as conn:
        left = conn.execute(
            text("SELECT entity_id FROM proj_sync_feed WHERE org_id = :org"), {"org": org_id}
        ).scalars()
        assert set(left) == {rows[1][0], rows[2][0]}
        horizon = conn.execute(
            text("SELECT tx::text, change_id FROM proj_sync_horizons WHERE org_id = :org"),
            {"org": org_id},
        ).one()
        assert tuple(horizon) == ("5", 11)
        conn.execute(text("DELETE FROM proj_sync_feed WHERE org_id = :org"), {"org": org_id})
        conn.execute(text("DELETE FROM proj_sync_horizons WHERE org_id = :org"), {"org": org_id})
        conn.commit()


def test_the_sweeper_prunes_webhook_deliveries_past_the_retention(db: Engine) -> None:
    """Delivered and failed deliveries older than WEBHOOK_LOG_RETENTION_DAYS go, from the
    deliveries and (through their change rows) from the log; pending ones and young ones
    stay, unless their webhook was deleted."""
    org = make_org(db)
    live, deleted = uuid.uuid4(), uuid.uuid4()
    deliveries = {  # name: (webhook, status, age in days)
        "old delivered": (live, "delivered", 40),
        "old failed": (live, "failed", 40),
        "young delivered": (live, "delivered", 2),
        "old pending": (live, "pending", 40),
        "old, of a deleted webhook": (deleted, "pending", 40),
    }
    ids = {name: uuid.uuid4() for name in deliveries}
    with db.begin() as conn:
        for webhook_id, gone in ((live, None), (deleted, datetime.now(UTC))):
            conn.execute(
                text(
                    "INSERT INTO webhooks (id, org_id, url, events, description, secret,"
                    " enabled, created_by, deleted_at)"
                    " VALUES (:id, :org, 'https://example.com/h', '{*}', '', 'whsec_x', true,"
                    " :owner, :gone)"
                ),
                {"id": webhook_id, "org": org.id, "owner": org.owner.id, "gone": gone},
            )
        for name, (webhook_id, status, days) in deliveries.items():
            conn.execute(
                text(
                    "INSERT INTO webhook_deliveries (id, org_id, webhook_id, event_id,"
                    " event_type, body, status, attempts, delivered_at, created_at)"
                    " VALUES (:id, :org, :hook, :event, 'tag.created', '{}', :status, 1,"
                    " :delivered_at, now() - make_interval(days => :days))"
                ),
                {
                    "id": ids[name],
                    "org": org.id,
                    "hook": webhook_id,
                    "event": uuid.uuid4(),
                    "status": status,
                    "days": days,
                    "delivered_at": (
                        datetime.now(UTC) - timedelta(days=days) if status == "delivered" else None
                    ),
                },
            )
    with Session(db) as session, session.begin():
        refresh_log(session, ids.values())  # as the projection had them
    assert get_settings().webhook_log_retention_days == 30
    assert _sweeper().prune_webhook_deliveries() >= 3
    kept = {"young delivered", "old pending"}

    def logged() -> set[uuid.UUID]:
        with db.connect() as conn:
            return set(
                conn.execute(
                    text("SELECT id FROM proj_webhook_deliveries WHERE org_id = :org"),
                    {"org": org.id},
                ).scalars()
            )

    with db.connect() as conn:
        left = conn.execute(
            text("SELECT id FROM webhook_deliveries WHERE org_id = :org"), {"org": org.id}
        ).scalars()
        assert set(left) == {ids[name] for name in kept}
    sessions = sessionmaker(bind=db)
    _repeat_until(  # the webhooks projection follows catalog and entries
        lambda: logged() == {ids[name] for name in kept},
        lambda: [advance(sessions, projection) for projection in PROJECTIONS],
    )
    assert logged() == {ids[name] for name in kept}
