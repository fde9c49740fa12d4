"""Test setup: one database per xdist worker built by the real Alembic migrations, the real
Redis, and the command API served by uvicorn on a free port.

Tests never share state: every test creates its own users and organizations.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, make_url

from tests.services import ROOT, postgres_server_url, redis_server_url

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
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
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
    with httpx.Client(base_url=f"{command_server.url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def raw_api(command_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the command API at its root (health, metrics, docs)."""
    with httpx.Client(base_url=command_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def query_server(environment: None) -> Iterator[LiveServer]:
    from query_api.main import create_app

    with LiveServer(create_app()) as server:
        yield server


@pytest.fixture
def qapi(query_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client of the query API, `/api/v1` as base."""
    with httpx.Client(base_url=f"{query_server.url}/api/v1", timeout=30) as client:
        yield client


class BackgroundProjector:
    """What the worker does, in a thread of the test process: advance every projection
    as soon as there is something to advance."""

    def __init__(self, db: Engine) -> None:
        from sqlalchemy.orm import sessionmaker

        self.sessions = sessionmaker(bind=db)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from projections.registry import PROJECTIONS
        from projections.runner import advance

        while not self.stop.wait(0.01):
            for projector in PROJECTIONS:
                try:
                    advance(self.sessions, projector)
                except Exception:  # the next tick retries; tests assert on the results
                    time.sleep(0.1)


@pytest.fixture
def projector_running(db: Engine) -> Iterator[BackgroundProjector]:
    """Keep the projections advancing during the test (the worker's job)."""
    projector = BackgroundProjector(db)
    projector.thread.start()
    yield projector
    projector.stop.set()
    projector.thread.join(10)
