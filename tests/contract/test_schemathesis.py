"""Both APIs answer as their OpenAPI documents say: schemathesis runs against each, served
for real (uvicorn in a process of its own, on a database of its own built by the
migrations), as a user who owns a real organization; any failure fails the test with
schemathesis' report.

The checks and phases are the ones issue 13 names. A run is bounded by `--max-time`, not
by a number of cases: a slow machine runs fewer cases, it never fails for being slow
(requests may take a minute). The seed is fixed: the report's command line replays a
failure.

Real ids go to schemathesis as fixed path parameters, so that its requests get past the
404 of an unknown organization and meet the rules behind it (roles, the last owner,
duplicates, archived projects). Each delete gets a record of its own, so that deleting
does not leave every other operation on a 404.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import create_engine

from evotrack.embedded import free_port
from tests.conftest import BackgroundProjector, migrate, running
from tests.services import ROOT, scratch_database

CHECKS = (
    "not_a_server_error,status_code_conformance,response_schema_conformance,"
    "content_type_conformance"
)
PHASES = "examples,coverage,fuzzing"
MAX_TIME_SECONDS = int(os.environ.get("CONTRACT_MAX_TIME_SECONDS", "90"))
SEED = 13
# Bounds on a hang, far above what anything here takes: never what fails a slow run.
REQUEST_TIMEOUT_SECONDS = 60
STARTUP_SECONDS = 120
RUN_BOUND_SECONDS = MAX_TIME_SECONDS + 900

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")


# --- Servers of their own ---------------------------------------------------------------


@pytest.fixture(scope="module")
def contract_database(environment: None) -> Iterator[str]:
    """A database of the contract tests' own: the fuzzed writes stay out of the worker's
    database, which the other tests share."""
    with scratch_database(f"evotrack_contract_{WORKER}_{os.getpid()}") as url:
        migrate(url)
        yield url


@pytest.fixture(scope="module")
def contract_env(contract_database: str, redis_url: str) -> dict[str, str]:
    """The test environment (tests/conftest.py) on the contract database, and on another
    Redis database than the worker's: the doorbell's jobs must not reach the queues that
    worker tests watch."""
    index = (int(WORKER[2:]) + 9) % 16 if WORKER.startswith("gw") else 9
    contract_redis = f"{redis_url.rsplit('/', 1)[0]}/{index}"
    redis.Redis.from_url(contract_redis).flushdb()
    return {
        **os.environ,
        "DATABASE_URL": contract_database,
        "QUERY_DATABASE_URL": contract_database,
        "REDIS_URL": contract_redis,
        # schemathesis sends one request at a time: a few connections are plenty, and the
        # server's connection slots are shared with the other worker's tests.
        "DB_POOL_SIZE": "4",
        # The production bound: a read waiting for a write never made ends in 5 s, not 30.
        "CONSISTENCY_WAIT_SECONDS": "5",
        # The access token must outlive both runs, however slow the machine.
        "ACCESS_TOKEN_TTL_SECONDS": "86400",
    }


class ApiProcess:
    """One API served by uvicorn in a process of its own, as in production."""

    def __init__(self, app: str, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{app}:create_app",
                "--factory",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--log-level=warning",
                "--no-server-header",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=REQUEST_TIMEOUT_SECONDS).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.log_path.name} did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-20_000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _serve(app: str, env: dict[str, str], logs: Path) -> Iterator[ApiProcess]:
    api = ApiProcess(app, env, logs / f"{app}.log")
    try:
        api.wait_until_up()
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contract")


@pytest.fixture(scope="module")
def command_api(contract_env: dict[str, str], logs: Path) -> Iterator[ApiProcess]:
    yield from _serve("command_api.main", contract_env, logs)


@pytest.fixture(scope="module")
def query_api(contract_env: dict[str, str], logs: Path) -> Iterator[ApiProcess]:
    yield from _serve("query_api.main", contract_env, logs)


# --- A real user with a real organization ------------------------------------------------


@dataclass(frozen=True)
class World:
    """What the fuzzed requests act on. `spare` holds one more record of each kind, for the
    operation that deletes it (by operation id)."""

    access_token: str
    consistency_token: str
    ids: dict[str, str]
    spare: dict[str, dict[str, str]]


class Seeder:
    """Makes the world through the command API, as a client would."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.consistency_token = ""
        self.org_path = ""

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> str:
        """Run a command; the id of what it created or changed ("" for none)."""
        response = self.client.request(method, path, json=body)
        assert response.is_success, (method, path, response.status_code, response.text)
        self.consistency_token = response.headers.get("X-Consistency-Token", self.consistency_token)
        return str(response.json()["data"].get("id", "")) if response.content else ""

    def sign_up(self) -> tuple[str, str]:
        """A new user, signed in: their id and an access token."""
        email = f"contract-{uuid.uuid4().hex[:12]}@example.com"
        credentials = {"email": email, "password": "contract-password-0123"}
        user_id = self.send("POST", "/auth/register", {**credentials, "full_name": "Contract"})
        login = self.client.post("/auth/login", json=credentials)
        access_token = str(login.json()["data"]["access_token"])
        self.client.headers["Authorization"] = f"Bearer {access_token}"
        return user_id, access_token

    def organization(self) -> str:
        body = {"name": "Contract", "timezone": "Europe/Paris", "currency": "EUR"}
        return self.send("POST", "/organizations", body)

    def named(self, kind: str, under: str = "") -> str:
        """A client, project, task, tag or team of the organization, by its plural."""
        body = {"name": f"{kind} {uuid.uuid4().hex[:6]}"}
        return self.send("POST", f"{self.org_path}{under}/{kind}", body)

    def project(self) -> str:
        body = {"name": f"Project {uuid.uuid4().hex[:6]}", "client_id": self.named("clients")}
        return self.send("POST", f"{self.org_path}/projects", {**body, "hourly_rate": 5000})

    def entry(self, day: int, references: dict[str, Any]) -> str:
        body = {
            "start_at": f"2026-01-{day:02d}T09:00:00Z",
            "end_at": f"2026-01-{day:02d}T10:30:00Z",
            "description": "Seeded",
            **references,
        }
        return self.send("POST", f"{self.org_path}/time-entries", body)


def _seed(command_url: str) -> World:
    with httpx.Client(base_url=f"{command_url}/api/v1", timeout=REQUEST_TIMEOUT_SECONDS) as client:
        seed = Seeder(client)
        user_id, access_token = seed.sign_up()
        org_id = seed.organization()
        seed.org_path = f"/organizations/{org_id}"
        project_id = seed.project()
        task_id = seed.named("tasks", f"/projects/{project_id}")
        tag_id = seed.named("tags")
        references = {"project_id": project_id, "task_id": task_id, "tag_ids": [tag_id]}
        ids = {
            "org_id": org_id,
            "client_id": seed.named("clients"),
            "project_id": project_id,
            "task_id": task_id,
            "tag_id": tag_id,
            "team_id": seed.named("teams"),
            "user_id": user_id,
            "entry_id": seed.entry(5, references),
            "token_id": seed.send("POST", "/auth/api-tokens", {"name": "contract"}),
        }
        seed.send("PUT", f"{seed.org_path}/teams/{ids['team_id']}/members/{user_id}")
        seed.send("PUT", f"{seed.org_path}/projects/{project_id}/members/{user_id}")
        spare = {
            "delete_organization": {"org_id": seed.organization()},
            "delete_client": {"client_id": seed.named("clients")},
            "delete_project": {"project_id": seed.project()},
            "delete_task": {"task_id": seed.named("tasks", f"/projects/{project_id}")},
            "delete_tag": {"tag_id": seed.named("tags")},
            "delete_team": {"team_id": seed.named("teams")},
            "delete_time_entry": {"entry_id": seed.entry(6, references)},
            "revoke_api_token": {
                "token_id": seed.send("POST", "/auth/api-tokens", {"name": "spare"})
            },
        }
        return World(access_token, seed.consistency_token, ids, spare)


@pytest.fixture
def world(command_api: ApiProcess) -> World:
    """A world of its own for each run: the command API's run may leave the organization
    in any state its rules allow (its owner demoted by another owner it added, say), and
    the query API's run, on the same xdist worker after it, must still find it."""
    return _seed(command_api.url)


# --- The run ------------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    return json.dumps(value)


# Where each kind of id goes besides a path: bodies of commands, filters of reads. Four
# times in five the real one, so that requests pass the 404 and meet the rules behind it.
ID_FIELDS = {
    "project_id": ("project_id", "entries[*].project_id"),
    "task_id": ("task_id", "entries[*].task_id"),
    "tag_id": ("tag_ids[*]", "entries[*].tag_ids[*]"),
    "client_id": ("client_id",),
    "team_id": ("parent_id",),
    "user_id": ("user_id", "entries[*].user_id"),
}
QUERY_IDS = ("project_id", "task_id", "tag_id", "client_id", "team_id", "user_id")
REAL_ID_PROBABILITY = 0.8


def schemathesis_config(world: World, *, deletes: bool) -> str:
    """schemathesis.toml: the credentials, the real ids (and with `deletes`, each delete's
    own record)."""
    dictionaries = {kind: {"values": [world.ids[kind]]} for kind in ID_FIELDS}
    dictionaries["consistency_token"] = {"values": [world.consistency_token]}
    parameters: dict[str, object] = {f"path.{k}": v for k, v in world.ids.items()}
    # Half the reads wait for a real write (the seeding's last), the others for anything.
    parameters["header.X-Consistency-Token"] = {
        "dictionary": "consistency_token",
        "probability": 0.5,
    }
    for kind, fields in ID_FIELDS.items():
        binding = {"dictionary": kind, "probability": REAL_ID_PROBABILITY}
        parameters |= {f"body.{field}": binding for field in fields}
        if kind in QUERY_IDS:
            parameters[f"query.{kind}"] = binding
    lines = [
        f"headers = {_toml_value({'Authorization': f'Bearer {world.access_token}'})}",
        "cache.enabled = false",
        "",
        "[dictionaries]",
        *(f"{kind} = {_toml_value(values)}" for kind, values in dictionaries.items()),
        "",
        "[parameters]",
        *(f"{json.dumps(key)} = {_toml_value(value)}" for key, value in parameters.items()),
    ]
    for operation_id, ids in world.spare.items() if deletes else ():
        lines += [
            "",
            "[[operations]]",
            f"include-operation-id = {json.dumps(operation_id)}",
            f"parameters = {_toml_value({f'path.{k}': v for k, v in ids.items()})}",
        ]
    return "\n".join(lines) + "\n"


def run_schemathesis(api: ApiProcess, config: str, workdir: Path) -> None:
    """Run schemathesis against `api` with `config`; fail with its report (and the
    server's log) on any failure."""
    config_path = workdir / "schemathesis.toml"
    config_path.write_text(config)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        f"--config-file={config_path}",
        "run",
        f"{api.url}/openapi.json",
        f"--checks={CHECKS}",
        f"--phases={PHASES}",
        f"--max-time={MAX_TIME_SECONDS}",
        f"--seed={SEED}",
        f"--request-timeout={REQUEST_TIMEOUT_SECONDS}",
        "--workers=1",
        "--generation-database=none",
        "--suppress-health-check=all",
        "--no-color",
        "--output-truncate=false",
        # Test credentials of a throwaway database: the report's curl lines replay as they are.
        "--output-sanitize=false",
    ]
    result = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=RUN_BOUND_SECONDS,
        check=False,
    )
    report = result.stdout + result.stderr
    (workdir / "schemathesis.out").write_text(report)
    if result.returncode != 0:
        pytest.fail(
            f"schemathesis found failures (exit {result.returncode}):\n{report}\n"
            f"--- server log ---\n{api.output()}",
            pytrace=False,
        )


def test_command_api_answers_as_its_openapi_document_says(
    command_api: ApiProcess, world: World, tmp_path: Path
) -> None:
    run_schemathesis(command_api, schemathesis_config(world, deletes=True), tmp_path)


def test_query_api_answers_as_its_openapi_document_says(
    command_api: ApiProcess,
    query_api: ApiProcess,
    world: World,
    contract_database: str,
    tmp_path: Path,
) -> None:
    engine = create_engine(contract_database.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with running(BackgroundProjector(engine)):
            _wait_for_the_world(query_api, world)
            run_schemathesis(query_api, schemathesis_config(world, deletes=False), tmp_path)
    finally:
        engine.dispose()


def _wait_for_the_world(query_api: ApiProcess, world: World) -> None:
    """Until the query API shows the seeded organization (the projector has caught up)."""
    headers = {
        "Authorization": f"Bearer {world.access_token}",
        "X-Consistency-Token": world.consistency_token,
    }
    url = f"{query_api.url}/api/v1/organizations/{world.ids['org_id']}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        response = httpx.get(url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
        if response.is_success or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert response.is_success, (response.status_code, response.text)
