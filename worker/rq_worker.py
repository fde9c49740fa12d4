"""The RQ worker of worker.main, made to ride out Redis going away at any moment.

RQ's own work loop does not: a Redis error while it reports a finished job, sends a
heartbeat, checks for suspension or cleans its registries ends the loop ("found an
unhandled exception, quitting"), and its teardown then raises the same error out of
`work()`, killing the process (issue 12). A Redis error while it waits for a job is retried
in place, with a backoff of up to a minute, and a Redis that came back empty no longer
lists the worker.

Here every Redis error under the work loop ends the loop quietly (`RedisLostError`), the
teardown tolerates a Redis that is away, and worker.main connects again and starts a fresh
worker, registered anew. Meanwhile `rq_listening` is clear, so the sweeper advances the
projections itself (worker/sweeper.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from types import FrameType
from typing import Any

import redis
from rq import Queue
from rq.exceptions import StopRequested
from rq.worker import SimpleWorker, WorkerStatus

from worker.jobs import rq_listening, stop_requested

log = logging.getLogger("evotrack.worker")

REDIS_ERRORS = (redis.RedisError, OSError)


class RedisLostError(StopRequested):
    """Redis failed under RQ's work loop. A StopRequested because that is the one exception
    RQ's loop ends on quietly, and still runs its teardown."""


@contextlib.contextmanager
def _redis_errors_end_the_loop() -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        rq_listening.clear()
        raise RedisLostError(str(exc)) from exc


class WakeupQueue(Queue):
    """RQ's Queue, whose wait for a job hands a Redis failure to worker.main (which comes
    back within a second of Redis) instead of RQ's retry in place (which backs off)."""

    @classmethod
    def dequeue_any(cls, *args: Any, **kwargs: Any) -> Any:
        with _redis_errors_end_the_loop():
            return super().dequeue_any(*args, **kwargs)


class WakeupWorker(SimpleWorker):
    """RQ's SimpleWorker that leaves its work loop when Redis fails (see the module), keeps
    `rq_listening` up to date, honours a stop request that arrived before its own signal
    handlers were in place, and tells a running job to stop after its current batch."""

    queue_class = WakeupQueue

    def __init__(self, *args: Any, wakeup_queue: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wakeup_queue = wakeup_queue
        self.lost_redis: RedisLostError | None = None

    @contextlib.contextmanager
    def _ends_if_redis_fails(self) -> Iterator[None]:
        try:
            with _redis_errors_end_the_loop():
                yield
        except RedisLostError as exc:
            self.lost_redis = exc
            raise

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ sends one before each wait for a job and after each job: one that reaches
        Redis means this worker takes wake-up jobs now, so the sweeper may leave the work
        to a doorbell. (With a pipeline, nothing has reached Redis yet.)"""
        with self._ends_if_redis_fails():
            super().heartbeat(timeout, pipeline)
        if pipeline is None and self.get_state() != WorkerStatus.SUSPENDED:
            rq_listening.set()

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if state == WorkerStatus.SUSPENDED:
            rq_listening.clear()  # `rq suspend`: wake-ups wait in the queue, unanswered
        with self._ends_if_redis_fails():
            super().set_state(state, pipeline)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        # RQ bootstraps before its try/finally: tear down what was set up (the pub/sub
        # thread) here when Redis fails in the middle.
        try:
            with self._ends_if_redis_fails():
                super().bootstrap(*args, **kwargs)
        except RedisLostError:
            self.teardown()
            raise

    def check_for_suspension(self, burst: bool) -> None:
        with self._ends_if_redis_fails():
            super().check_for_suspension(burst)

    def run_maintenance_tasks(self) -> None:
        with self._ends_if_redis_fails():
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]

    def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
        with self._ends_if_redis_fails():
            return super().dequeue_job_and_maintain_ttl(*args, **kwargs)

    def execute_job(self, job: Any, queue: Any) -> None:
        """RQ catches what the job raises; what fails here is RQ's bookkeeping around the
        job. The job's own work is in PostgreSQL, committed or rolled back: losing that
        bookkeeping with Redis loses nothing."""
        if queue.name != self.wakeup_queue:
            rq_listening.clear()  # wake-ups wait behind this job (the next heartbeat says)
        with self._ends_if_redis_fails():
            super().execute_job(job, queue)

    def teardown(self) -> None:
        """RQ's teardown for a SimpleWorker without a scheduler (deregister, unsubscribe),
        which goes on when Redis is away: the registration then expires by itself."""
        rq_listening.clear()
        try:
            self.register_death()  # type: ignore[no-untyped-call]
        except REDIS_ERRORS as exc:
            log.debug("could not deregister from Redis: %s", exc)
        self.unsubscribe()

    def unsubscribe(self) -> None:
        unsubscribe_without_waiting(self)

    def set_shutdown_requested_date(self) -> None:
        # Called by the signal handler in the middle of a job: a Redis that is away must
        # not raise inside the job and turn a warm stop into a failed batch.
        with contextlib.suppress(*REDIS_ERRORS):
            super().set_shutdown_requested_date()  # type: ignore[no-untyped-call]

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        stop_requested.set()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]
        if stop_requested.is_set():
            # What RQ itself records for a warm shutdown requested in the middle of a job:
            # the work loop checks it before taking the next job, then deregisters.
            self._stop_requested = True


def unsubscribe_without_waiting(worker: SimpleWorker) -> None:
    """Stop an RQ worker's pub/sub thread without waiting for it. RQ's `unsubscribe` joins
    it, and the thread of redis-py 8, once unsubscribed, may wait a minute before it looks
    again (a warm stop took that long). Asked to stop first, it leaves as soon as the
    UNSUBSCRIBE reply wakes it (or its wait ends), and closes its connection."""
    thread, worker.pubsub_thread = worker.pubsub_thread, None
    if thread is None or worker.pubsub is None:
        return
    thread.stop(timeout=0)
    with contextlib.suppress(*REDIS_ERRORS):
        worker.pubsub.unsubscribe()
