"""The deployment files keep their promises (issue 13): compose.yaml, deploy/haproxy.cfg,
the Dockerfile, .dockerignore, requirements.lock and the Makefile's install rule.

Structural, so that they run on any machine: no Docker engine is needed. Where the tools
are installed, `docker compose config` and `haproxy -c` check the files as well, and a
real HAProxy on loopback shows that the proxy serves only healthy replicas.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from evotrack.embedded import free_port
from evotrack.run import api_argv
from shared.config import Settings
from tests.services import ROOT

COMPOSE = ROOT / "compose.yaml"
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
LOCK = ROOT / "requirements.lock"

# Settings compose sets itself, or that a user has no reason to change there.
INTERNAL_SETTINGS = {
    "DATABASE_URL": "wired to compose's own postgres",
    "REDIS_URL": "wired to compose's own redis",
    "API_WORKERS": "read by `evotrack run` only; compose scales with replicas",
    "WAKEUP_QUEUE": "the APIs and the workers must agree; compose runs them all",
    "NOTIFICATIONS_QUEUE": "the APIs and the workers must agree; compose runs them all",
    "WEBHOOKS_QUEUE": "the APIs and the workers must agree; compose runs them all",
    "WEBHOOK_WORKERS": "read by `evotrack run` only; compose scales with replicas",
}
# Passed with a value of compose's own instead of the default of shared/config.py.
COMPOSE_DEFAULTS = {"ENVIRONMENT": "production"}
LONG_RUNNING_RESTART = {"always", "unless-stopped", "on-failure"}


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = load_compose()["services"]
    return found


def one_shot_services() -> set[str]:
    """Services others wait for to exit 0 (`service_completed_successfully`)."""
    return {
        name
        for service in services().values()
        for name, condition in (service.get("depends_on") or {}).items()
        if condition.get("condition") == "service_completed_successfully"
    }


def app_services() -> dict[str, dict[str, Any]]:
    """The services built from this repository's Dockerfile."""
    return {name: service for name, service in services().items() if "build" in service}


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


# --- compose.yaml ------------------------------------------------------------------------


def test_every_long_running_service_has_a_health_check_and_is_restarted() -> None:
    assert one_shot_services() == {"migrate"}
    for name, service in services().items():
        if name in one_shot_services():
            assert service.get("restart") == "no", f"{name} runs once: restart would loop"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test"), f"{name} has no health check"
        assert not check.get("disable"), f"{name}'s health check is disabled"
        assert service.get("restart") in LONG_RUNNING_RESTART, f"{name} is not restarted"


def test_the_workers_health_check_asks_whether_the_worker_is_registered() -> None:
    workers = [s for s in services().values() if s.get("command", [])[:2] == ["evotrack", "worker"]]
    assert len(workers) == 3, "the projections workers, the notifier and the webhook senders"
    for worker in workers:
        assert worker["healthcheck"]["test"] == ["CMD", "python", "-m", "worker.healthcheck"]


def test_the_query_api_replicas_are_reached_through_the_proxy_only() -> None:
    query_api, proxy = services()["query_api"], services()["proxy"]
    assert "ports" not in query_api, "a replica with a host port of its own bypasses the proxy"
    assert query_api["deploy"]["replicas"] >= 2
    assert "query_api" in proxy["depends_on"]
    assert (
        f"./{HAPROXY_CFG.relative_to(ROOT)}:/usr/local/etc/haproxy/haproxy.cfg:ro"
        in (proxy["volumes"])
    )
    assert proxy["ports"] == ["${QUERY_API_PORT:-8001}:8001"]
    assert services()["command_api"]["ports"] == ["${COMMAND_API_PORT:-8000}:8000"]


def test_the_apis_are_served_as_evotrack_run_serves_them() -> None:
    """The options of `evotrack run`'s uvicorn (no access log, the log config, ...), less
    --workers: compose runs one process a container and scales with replicas."""
    run_options = {a for a in api_argv("app", "host", 1, 1, Path("x.json")) if a[:2] == "--"}
    # The query API's replicas also take the client's address from the proxy's header.
    extra = {"command_api": set(), "query_api": {"--forwarded-allow-ips"}}
    for name in ("command_api", "query_api"):
        command = services()[name]["command"]
        options = {a for a in command if a[:2] == "--"}
        assert options == (run_options - {"--workers"}) | extra[name], name
        assert "/app/uvicorn-logging.json" in command, "written by the Dockerfile"
    assert any("uvicorn-logging.json" in i for i in dockerfile_instructions())


def haproxy_directives(section_prefix: str) -> list[list[str]]:
    """The lines of the haproxy.cfg sections whose header starts with `section_prefix`."""
    lines, inside = [], False
    for raw in HAPROXY_CFG.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not raw.startswith((" ", "\t")):
            inside = line.startswith(section_prefix)
        elif inside:
            lines.append(line.split())
    return lines


def test_the_proxy_finds_every_replica_and_checks_each_one() -> None:
    backend = haproxy_directives("backend query_api")
    query_port = option(services()["query_api"]["command"], "--port")
    template = next(line for line in backend if line[0] == "server-template")
    assert template[3] == f"query_api:{query_port}", "the service name and the replicas' port"
    defaults = next(line for line in backend if line[0] == "default-server")
    assert {"check", "resolvers"} <= set(defaults), "each replica checked, found again by DNS"
    assert ["option", "httpchk"] in backend
    assert any("uri" in line and "/health" in line for line in backend if line[0] == "http-check")
    frontend = haproxy_directives("frontend query_api")
    assert ["bind", ":8001"] in frontend
    health_test = services()["proxy"]["healthcheck"]["test"]
    monitor_uri = next(line[1] for line in frontend if line[0] == "monitor-uri")
    assert health_test[-1] == f"http://127.0.0.1:8001{monitor_uri}"


def settings_env_names() -> set[str]:
    assert not Settings.model_config.get("env_prefix"), "env names are the field names"
    return {name.upper() for name in Settings.model_fields}


def test_every_setting_is_passed_through_or_listed_as_internal() -> None:
    names = settings_env_names()
    assert set(INTERNAL_SETTINGS) <= names, "an internal setting that no longer exists"
    for service_name, service in app_services().items():
        environment: dict[str, str | None] = service["environment"]
        assert set(environment) <= names, f"{service_name}: not a setting of shared/config.py"
        for name in sorted(names - set(INTERNAL_SETTINGS)):
            assert name in environment, f"{service_name} does not pass {name} through"
            value = environment[name]
            # Bare (the host's value, or unset) or interpolated from the same name.
            assert value is None or value.startswith(f"${{{name}"), f"{name}: {value!r}"


def test_the_values_compose_sets_itself() -> None:
    for service in app_services().values():
        environment = service["environment"]
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert environment["REDIS_URL"].startswith("redis://redis:6379/")
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), "required, no default"
        for name, value in COMPOSE_DEFAULTS.items():
            assert environment[name] == f"${{{name}:-{value}}}"
        for name in (
            "API_WORKERS",
            "WAKEUP_QUEUE",
            "NOTIFICATIONS_QUEUE",
            "WEBHOOKS_QUEUE",
            "WEBHOOK_WORKERS",
        ):
            assert name not in environment


def docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return result.returncode == 0


@pytest.mark.skipif(not docker_compose_available(), reason="no docker CLI with compose plugin")
def test_docker_compose_accepts_the_file() -> None:
    # Only these variables: neither the caller's environment nor a developer's .env.
    without_secret = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    env = {**without_secret, "SECRET_KEY": "x" * 40}
    command = ["docker", "compose", "-f", str(COMPOSE), "--env-file", os.devnull, "config", "-q"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        command, capture_output=True, text=True, env=without_secret, check=False
    )
    assert result.returncode != 0, "SECRET_KEY is required"
    assert "SECRET_KEY" in result.stderr


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_accepts_its_configuration() -> None:
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the proxy at work -------------------------------------------------------------------


class Replica:
    """A stand-in for a query API replica on loopback: /health answers 200 or 503 as told,
    /forwarded-for the X-Forwarded-For it got, every other path 200 with its name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.healthy = True
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/health":
                    status, body = (200, b"ok") if replica.healthy else (503, b"down")
                elif self.path == "/forwarded-for":
                    status, body = 200, self.headers.get("X-Forwarded-For", "").encode()
                else:
                    status, body = 200, replica.name.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def loopback_config(proxy_port: int, replicas: list[Replica]) -> str:
    """deploy/haproxy.cfg with its two Docker-only parts replaced: it listens on a loopback
    port, and the replicas are listed instead of found through Docker's DNS."""
    lines = []
    for line in HAPROXY_CFG.read_text().splitlines():
        words = line.split()
        if words[:1] == ["bind"]:
            line = f"    bind 127.0.0.1:{proxy_port}"
        elif words[:1] == ["default-server"]:
            line = line.split(" resolvers ")[0]
        elif words[:1] == ["server-template"]:
            line = "\n".join(f"    server {r.name} 127.0.0.1:{r.port}" for r in replicas)
        lines.append(line)
    return "\n".join(lines) + "\n"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_for(what: str, condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not: {what}"
        time.sleep(0.1)


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    started = [Replica("replica-a"), Replica("replica-b")]
    yield started
    for replica in started:
        replica.close()


@pytest.fixture
def proxy_url(tmp_path: Path, replicas: list[Replica]) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(loopback_config(port, replicas))
    with (tmp_path / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(["haproxy", "-db", "-f", str(config)], stdout=log, stderr=log)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_the_proxy_serves_only_the_replicas_whose_health_check_passes(
    proxy_url: str, replicas: list[Replica]
) -> None:
    replica_a, replica_b = replicas
    proxy_health = f"{proxy_url}/proxy/health"

    def answered_by() -> set[str]:
        return {get(f"{proxy_url}/api/v1/anything")[1] for _ in range(8)}

    wait_for("both replicas serve", lambda: answered_by() == {"replica-a", "replica-b"})
    replica_a.healthy = False
    wait_for("only replica-b serves", lambda: answered_by() == {"replica-b"})
    assert get(proxy_health)[0] == 200
    replica_b.healthy = False
    wait_for("the proxy reports no replica", lambda: get(proxy_health)[0] == 503)
    replica_a.healthy = True
    wait_for("replica-a serves again", lambda: answered_by() == {"replica-a"})
    assert get(proxy_health)[0] == 200


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_a_replica_learns_the_clients_address_and_never_a_forged_one(proxy_url: str) -> None:
    """The replicas trust X-Forwarded-For (compose.yaml): the proxy must send the address it
    saw, never one the client wrote, or a client picks its own rate-limit bucket."""
    forged = urllib.request.Request(
        f"{proxy_url}/forwarded-for", headers={"X-Forwarded-For": "203.0.113.9"}
    )
    wait_for("a replica serves", lambda: get(f"{proxy_url}/forwarded-for")[0] == 200)
    with urllib.request.urlopen(forged, timeout=5) as response:
        assert response.read().decode() == "127.0.0.1"
    assert "--forwarded-allow-ips" in services()["query_api"]["command"]


# --- the image ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]


def dockerignore_patterns() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip() for line in lines if line.strip()[:1] not in ("", "#")}


def test_the_build_context_leaves_the_checkout_out() -> None:
    ignored = dockerignore_patterns()
    assert {".venv", ".evotrack", ".git", ".env", "tests", "bench"} <= ignored
    for instruction in dockerfile_instructions():
        if instruction.startswith("COPY "):
            for source in shlex.split(instruction)[1:-1]:
                assert source not in ignored, f"the Dockerfile copies {source}, which is ignored"


def test_the_image_installs_the_locked_versions() -> None:
    instructions = dockerfile_instructions()
    assert any(i.startswith("COPY ") and LOCK.name in i.split() for i in instructions)
    installs = [i for i in instructions if "pip install" in i]
    assert installs
    for instruction in installs:
        for command in instruction.split("&&"):
            if "pip install" in command:
                pinned = f"-c {LOCK.name}" in command or f"PIP_CONSTRAINT={LOCK.name}" in command
                assert pinned, f"not installed from the lock: {command.strip()}"


# --- the lock ----------------------------------------------------------------------------


def locked() -> dict[str, list[tuple[str, str]]]:
    """Package name -> its (version, marker) lines in requirements.lock."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for line in LOCK.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"not an exact pin: {line}"
        marker = str(requirement.marker) if requirement.marker else ""
        pins.setdefault(canonicalize_name(requirement.name), []).append((specifier.version, marker))
    return pins


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    return [Requirement(r) for r in project["dependencies"] + sum(extras.values(), [])]


def test_the_lock_pins_every_dependency_of_pyproject() -> None:
    pins = locked()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in {LOCK.name}: run `make lock`"
        for version, _ in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{name}=={version} does not satisfy {requirement}: run `make lock`"
            )


def test_this_environment_has_the_locked_versions() -> None:
    """`make` installs with the lock as constraints; a venv that drifted is reinstalled by
    `make` once the lock is newer than it."""
    from importlib.metadata import PackageNotFoundError, version

    drifted = []
    for name, pins in locked().items():
        for locked_version, marker in pins:
            if marker and not Marker(marker).evaluate():
                continue
            try:
                installed = version(name)
            except PackageNotFoundError:
                installed = "missing"
            if installed != locked_version:
                drifted.append(f"{name} {installed} (locked {locked_version})")
    assert not drifted, "not as locked (run `make`): " + ", ".join(drifted)


def test_make_installs_from_the_lock_and_again_when_it_changes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    stamp_rule = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert stamp_rule, "the $(STAMP) rule"
    assert LOCK.name in stamp_rule.group(1).split()
    assert f"-c {LOCK.name} -e '.[dev]'" in stamp_rule.group(2)
    lock_rule = re.search(r"^lock:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert lock_rule, "the lock target"
    assert f"-o {LOCK.name}" in lock_rule.group(1)
