"""`evotrack run`: the whole product in one command.

Migrations, then the command API, the query API and two workers (projections,
notifications) as child processes, each started again if it dies. Without `DATABASE_URL` /
`REDIS_URL` it first starts an embedded PostgreSQL and Redis whose data live under the data
directory, so a second start finds everything where it was left.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from evotrack.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, port_is_free
from evotrack.errors import CliError
from evotrack.instance import RunState, data_dir_lock, published
from evotrack.migrations import redacted, upgrade_to_head
from evotrack.supervisor import ChildKeepsDying, ChildSpec, StopRequested, StopSignals, Supervisor
from shared.config import Settings
from shared.logging import uvicorn_log_config
from shared.supervision_metrics import SUPERVISOR_STATE_ENV

log = logging.getLogger("evotrack.run")

DATABASE_NAME = "evotrack"
DEFAULT_REDIS_PORT = 6390
STARTUP_WARNING_SECONDS = 60.0


@dataclass(frozen=True)
class RunOptions:
    host: str = "127.0.0.1"
    command_port: int = 8000
    query_port: int = 8001
    redis_port: int = DEFAULT_REDIS_PORT
    data_dir: Path = Path(".evotrack")
    stop_timeout_seconds: float = 10.0
    api_workers: int = 1
    webhook_workers: int = 2


@dataclass(frozen=True)
class BackingServices:
    database_url: str
    redis_url: str
    embedded_postgres: Path | None = None
    embedded_redis: Path | None = None


def run(settings: Settings, options: RunOptions) -> int:
    """Start everything, watch it, stop it. 0 after a requested stop, 1 when a child keeps
    dying at start. Every line it and its children log is in the format LOG_JSON chooses
    (the caller sets the logging up by it)."""
    with StopSignals() as signals:
        try:
            return _run(settings, options, signals)
        except StopRequested as stop:
            log.info("stopped on %s", stop)
            return 0


def _run(settings: Settings, options: RunOptions, signals: StopSignals) -> int:
    _check_ports_free(options)
    with ExitStack() as stack:
        try:
            services = _backing_services(stack, settings, options)
            if services.embedded_postgres or services.embedded_redis:
                stack.enter_context(published(options.data_dir, run_state(options, services)))
            upgrade_to_head(services.database_url)
            # Per run, outside the data directory (which holds only embedded servers' data).
            metrics_root = Path(tempfile.mkdtemp(prefix="evotrack-metrics-"))
            stack.callback(shutil.rmtree, metrics_root, ignore_errors=True)
            state_path = metrics_root / "supervisor.json"
            supervisor = Supervisor(
                _child_env(services, state_path),
                options.stop_timeout_seconds,
                state_path=state_path,
                relay_output=settings.log_json,
            )
            stack.callback(supervisor.stop, lambda: signals.hurry)
            for spec in child_specs(options, metrics_root):
                supervisor.start(spec)
            ready_banner = banner(settings, options, services)
            return _watch(
                supervisor, _health_urls(options), ready_banner, log_banner=settings.log_json
            )
        finally:
            # Whatever ends the run, a further signal must not interrupt the stop.
            signals.stopping()


def _check_ports_free(options: RunOptions) -> None:
    for port, flag in (
        (options.command_port, "--command-port"),
        (options.query_port, "--query-port"),
    ):
        if not port_is_free(port, options.host):
            raise CliError(
                f"port {port} on {options.host} is in use (another `evotrack run`?); "
                f"choose another with {flag}"
            )


# --- PostgreSQL and Redis ---------------------------------------------------------------


def _backing_services(stack: ExitStack, settings: Settings, options: RunOptions) -> BackingServices:
    database_url, redis_url = settings.database_url, settings.redis_url
    if database_url and redis_url:
        return BackingServices(database_url, redis_url)
    _hold_data_dir(stack, options.data_dir)
    pg_dir = redis_dir = None
    if not database_url:
        pg_dir = options.data_dir.resolve() / "pg"
        database_url = _start_embedded_postgres(stack, pg_dir)
    if not redis_url:
        redis_dir = options.data_dir.resolve() / "redis"
        redis_url = _start_embedded_redis(stack, redis_dir, options.redis_port)
    return BackingServices(database_url, redis_url, pg_dir, redis_dir)


def _hold_data_dir(stack: ExitStack, data_dir: Path) -> None:
    """One `evotrack run` per data directory: two Redis servers must never share a file."""
    try:
        stack.enter_context(data_dir_lock(data_dir))
    except BlockingIOError:
        raise CliError(f"another `evotrack run` is using {data_dir}") from None


def _start_embedded_postgres(stack: ExitStack, pg_dir: Path) -> str:
    log.info("starting the embedded PostgreSQL in %s (its log: %s)", pg_dir, pg_dir / "log")
    # Its INFO lines echo every pg_ctl command with its whole output.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    server = EmbeddedPostgres(pg_dir)
    stack.callback(_stop_embedded, "PostgreSQL", server.stop)
    server.start()
    _ensure_database(server.url("postgres"), DATABASE_NAME)
    return server.url(DATABASE_NAME)


def _ensure_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        log.info("created database %s", name)


def _start_embedded_redis(stack: ExitStack, redis_dir: Path, preferred_port: int) -> str:
    port = preferred_port if port_is_free(preferred_port) else free_port()
    if port != preferred_port:
        log.warning("port %d is taken; the embedded Redis listens on %d", preferred_port, port)
    log.info("starting the embedded Redis in %s (its log: %s)", redis_dir, redis_dir / "redis.log")
    server = EmbeddedRedis(redis_dir, port=port, persist=True, supervised=True)
    stack.callback(_stop_embedded, "Redis", server.stop)
    server.start()
    return server.url


def _stop_embedded(name: str, stop: Callable[[], None]) -> None:
    log.info("stopping the embedded %s", name)
    stop()


def run_state(options: RunOptions, services: BackingServices) -> RunState:
    """What the operator commands need to reach this run's embedded servers."""
    command_url, query_url = _api_urls(options)
    return RunState(
        pid=os.getpid(),
        database_url=services.database_url if services.embedded_postgres else None,
        redis_url=services.redis_url if services.embedded_redis else None,
        command_url=command_url,
        query_url=query_url,
    )


# --- the children -----------------------------------------------------------------------


def api_argv(
    app: str, host: str, port: int, workers: int, log_config: Path | None = None
) -> list[str]:
    """How an API is served: uvicorn, `workers` processes, no access log (the apps log
    every request themselves, with its id), no `server: uvicorn` header (it only tells a
    scanner what to try), uvicorn's own lines in our log format (`write_log_config`). The
    benchmarks serve the APIs the same way."""
    argv = [
        sys.executable, "-m", "uvicorn", f"{app}:create_app", "--factory",
        "--host", host, "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--no-server-header",
    ]  # fmt: skip
    return argv + (["--log-config", str(log_config)] if log_config else [])


def write_log_config(directory: Path) -> Path:
    """uvicorn's --log-config file: its lines (those of its parent process too, which never
    builds the app) through the APIs' handler, in the LOG_JSON format and LOG_LEVEL."""
    path = directory / "uvicorn-logging.json"
    path.write_text(json.dumps(uvicorn_log_config()))
    return path


def metrics_dir(root: Path, name: str) -> Path:
    """An empty directory for prometheus_client's multiprocess files of one API: request
    metrics summed over its worker processes, none left over from an earlier run."""
    directory = root / name.replace(" ", "-")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def child_specs(options: RunOptions, metrics_root: Path) -> list[ChildSpec]:
    log_config = write_log_config(metrics_root)

    def api(name: str, app: str, port: int, **settings: str) -> ChildSpec:
        env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(metrics_root, name)), **settings}
        argv = api_argv(app, options.host, port, options.api_workers, log_config)
        return ChildSpec(name, argv, env)

    # The query API's /docs signs in on this run's command API, wherever it listens.
    command_api_url = os.environ.get("COMMAND_API_URL") or _api_urls(options)[0]
    return [
        api("command API", "command_api.main", options.command_port),
        api("query API", "query_api.main", options.query_port, COMMAND_API_URL=command_api_url),
        # A worker per role, so that a slow email delivery or webhook receiver never holds
        # a projection back; several webhook senders, so that one receiver never holds
        # back another's deliveries.
        ChildSpec("worker", [sys.executable, "-m", "worker.main", "--role", "projections"]),
        ChildSpec("notifier", [sys.executable, "-m", "worker.main", "--role", "notifications"]),
        *(
            ChildSpec(f"webhooks {n}", [sys.executable, "-m", "worker.main", "--role", "webhooks"])
            for n in range(1, options.webhook_workers + 1)
        ),
    ]


def _child_env(services: BackingServices, supervisor_state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=services.database_url,
        REDIS_URL=services.redis_url,
        PYTHONUNBUFFERED="1",
    )
    env[SUPERVISOR_STATE_ENV] = str(supervisor_state)  # read by the APIs' /metrics
    return env


def _api_urls(options: RunOptions) -> tuple[str, str]:
    host = _display_host(options.host)
    return f"http://{host}:{options.command_port}", f"http://{host}:{options.query_port}"


def _health_urls(options: RunOptions) -> list[str]:
    return [f"{url}/health" for url in _api_urls(options)]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _watch(
    supervisor: Supervisor, health_urls: list[str], ready_banner: str, *, log_banner: bool = False
) -> int:
    """Restart the children that die; print the banner once both APIs answer (with
    `log_banner`, when the logs are JSON lines, log it: one more JSON line). Returns 1
    when a child keeps dying at start, after saying which and how it ended."""
    started = time.monotonic()
    announced = warned = False
    while True:
        try:
            supervisor.tend()
        except ChildKeepsDying as exc:
            log.error("%s", exc)
            return 1
        if not announced and all(_answers(url) for url in health_urls):
            if log_banner:
                log.info("%s", ready_banner.strip())
            else:
                print(ready_banner, flush=True)
            announced = True
        elif not announced and not warned and time.monotonic() - started > STARTUP_WARNING_SECONDS:
            log.warning("the APIs do not answer yet: %s", ", ".join(health_urls))
            warned = True
        time.sleep(0.2)


# --- the banner -------------------------------------------------------------------------


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _server_line(url: str, embedded_dir: Path | None) -> str:
    if embedded_dir is None:
        return redacted(url)
    return f"{url}  (embedded, data in {embedded_dir})"


def banner(settings: Settings, options: RunOptions, services: BackingServices) -> str:
    command_url, query_url = _api_urls(options)
    docs = "" if settings.is_production else "  docs: {}/docs"
    return "\n".join(
        [
            "",
            "EvoTrack is running",
            f"  command API  {command_url}{docs.format(command_url)}",
            f"  query API    {query_url}{docs.format(query_url)}",
            f"  workers      RQ queues '{settings.wakeup_queue}', '{settings.notifications_queue}'",
            f"  PostgreSQL   {_server_line(services.database_url, services.embedded_postgres)}",
            f"  Redis        {_server_line(services.redis_url, services.embedded_redis)}",
            "Press Ctrl-C to stop.",
            "",
        ]
    )
