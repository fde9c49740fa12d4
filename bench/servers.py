"""The product's processes for the HTTP benchmarks, started as `evotrack run` starts them:
an API under uvicorn (`API_WORKERS` processes, default the cores up to 4; no access log)
and the projection worker
(`python -m worker.main`), on the benchmark's database and Redis. Their output goes to
`.evotrack/bench/*.log`; they die with the benchmark.

Clients authenticate with JWTs minted here with the servers' secret key: logging in would
time argon2, not the API.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from pydantic import SecretStr

from bench.context import Context
from bench.services import DATA_DIR, ROOT
from evotrack.embedded import die_with_parent, free_port
from evotrack.run import api_argv, metrics_dir
from shared.config import Settings, default_api_workers
from shared.security import create_access_token

BENCH_SECRET_KEY = "evotrack-bench-secret-key-only-for-benchmarks"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
COMMAND_APP = "command_api.main"
QUERY_APP = "query_api.main"
NOOP_APP = "bench.noop_app"  # the command API plus `POST /bench/noop`
API_PREFIX = "/api/v1"
# Processes per API, as `evotrack run` starts them (API_WORKERS, else the cores up to 4).
API_WORKERS = int(os.environ.get("API_WORKERS") or default_api_workers())
# An A/B against an older commit in one run: the product's processes (not the benchmark's
# own no-op app) start from that checkout, with its virtual environment.
SERVER_CHECKOUT = os.environ.get("BENCH_SERVER_CHECKOUT")


def token_for(user_id: str | uuid.UUID) -> str:
    """An access token the servers accept, valid for an hour."""
    settings = Settings(secret_key=SecretStr(BENCH_SECRET_KEY), access_token_ttl_seconds=3600)
    return create_access_token(uuid.UUID(str(user_id)), settings)


def child_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "QUERY_DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": BENCH_SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }


def log_path(name: str) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR / f"{name}.log"


def _product(command: list[str]) -> tuple[list[str], Path]:
    """A product process's command and directory: this checkout's, or BENCH_SERVER_CHECKOUT's."""
    if not SERVER_CHECKOUT:
        return command, ROOT
    checkout = Path(SERVER_CHECKOUT).resolve()
    return [str(checkout / ".venv" / "bin" / "python"), *command[1:]], checkout


def _spawn(
    command: list[str], env: dict[str, str], name: str, cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    with open(log_path(name), "ab") as log:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it takes too long."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Server:
    root: str  # http://127.0.0.1:port
    process: subprocess.Popen[bytes]

    @property
    def psutil(self) -> psutil.Process:
        return psutil.Process(self.process.pid)


@contextlib.contextmanager
def api_server(
    ctx: Context, app: str, name: str, database_url: str | None = None
) -> Iterator[Server]:
    """Run `app:create_app` under uvicorn as `evotrack run` does, until the block ends;
    yields it once `/health` answers."""
    port = free_port()
    command = api_argv(app, "127.0.0.1", port, API_WORKERS)
    env = child_env(database_url or ctx.database_url, ctx.redis_url)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(DATA_DIR, name))
    cwd = ROOT
    if app != NOOP_APP:
        command, cwd = _product(command)
    process = _spawn(command, env, name, cwd)
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(process, root, name)
        yield Server(root, process)
    finally:
        stop(process)


def _wait_healthy(process: subprocess.Popen[bytes], root: str, name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            code = process.returncode
            raise RuntimeError(f"{name} exited with code {code}; see {log_path(name)}")
        try:
            if httpx.get(f"{root}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer /health in {START_TIMEOUT_SECONDS:g} s")


@contextlib.contextmanager
def worker_process(ctx: Context) -> Iterator[subprocess.Popen[bytes]]:
    """The projection worker (`python -m worker.main`) on the benchmark's database."""
    command, cwd = _product([sys.executable, "-m", "worker.main"])
    process = _spawn(command, child_env(ctx.database_url, ctx.redis_url), "worker", cwd)
    try:
        yield process
    finally:
        stop(process)
