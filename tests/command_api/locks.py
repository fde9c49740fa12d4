"""Races made deterministic: the test holds a row lock in an open transaction, sends a
request, waits until that request queues behind the lock (or has already answered, when
it takes no lock), then commits. The request then sees exactly what a concurrent command
would have committed meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import Engine, text

# Bounds a failure only: on a loaded machine a request can take seconds to reach the lock.
WAIT_SECONDS = 60


def race(
    db: Engine,
    sql: str | Sequence[str],
    params: dict[str, Any],
    send: Callable[[], httpx.Response],
) -> httpx.Response:
    """Run `sql` (one statement or several) uncommitted, `send` meanwhile, commit once
    `send` waits on us (or has answered); its answer."""
    with db.connect() as conn:
        transaction = conn.begin()
        for statement in [sql] if isinstance(sql, str) else sql:
            conn.execute(text(statement), params)
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(send)
            _wait_until_blocked_or_done(db, pid, answer)
            transaction.commit()
            return answer.result(timeout=WAIT_SECONDS)


def _wait_until_blocked_or_done(db: Engine, pid: int, answer: Future[httpx.Response]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not answer.done():
        with db.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                ),
                {"pid": pid},
            ).scalar_one()
        if waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the request neither answered nor waited for the held lock")
        time.sleep(0.01)
