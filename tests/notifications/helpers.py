"""Reading notifications in tests: the inbox through the query API, rows from the database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
from rq import Queue
from rq.worker import SimpleWorker
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from projections.registry import PROJECTIONS
from projections.runner import advance
from tests.factories import UserHandle
from worker.rq_worker import unsubscribe_without_waiting


def inbox(
    qapi: httpx.Client,
    user: UserHandle,
    token: str | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    """The user's inbox, read once the write behind `token` is visible."""
    headers = {**user.headers, **({"X-Consistency-Token": token} if token else {})}
    deadline = time.monotonic() + 90
    while True:
        response = qapi.get("/notifications", params=params, headers=headers)
        # 503 PROJECTION_LAG says "retry": on a loaded machine the bounded wait can pass.
        if response.status_code != 503 or time.monotonic() > deadline:
            break
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    data: list[dict[str, Any]] = body["data"]
    return data


def notification_rows(db: Engine, user_id: uuid.UUID, kind: str | None = None) -> list[Any]:
    with db.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT * FROM notifications WHERE user_id = :u"
                    " AND (CAST(:k AS text) IS NULL OR kind = :k) ORDER BY created_at, id"
                ),
                {"u": user_id, "k": kind},
            ).mappings()
        )


def project_all(db: Engine) -> None:
    """Advance every projection once, in registry order (what a wake-up job does)."""
    sessions = sessionmaker(bind=db)
    for projector in PROJECTIONS:
        advance(sessions, projector)


def sessions(db: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=db)


class InProcessWorker(SimpleWorker):
    """RQ's SimpleWorker in the test process, leaving pytest's signal handlers alone, and
    ending as the product's workers do, without waiting up to a minute for its pub/sub
    thread (each `work_off` took 60 s now and then)."""

    def _install_signal_handlers(self) -> None:
        return None

    def unsubscribe(self) -> None:
        unsubscribe_without_waiting(self)


def work_off(queue: Queue) -> bool:
    """Run the queue's jobs in this process until it is empty; True if any ran."""
    worker = InProcessWorker([queue], connection=queue.connection)
    return worker.work(burst=True, logging_level="WARNING")


def clock_at(moment: datetime) -> Callable[[], datetime]:
    """A clock stopped at `moment`."""
    return lambda: moment
