"""A client generated from each API's own `/openapi.json` works, typed, errors included
(issue 13 point 4).

Each run fetches the documents the running APIs serve, generates a package from each with
`openapi-python-client` (which must report nothing: a warning means a part of the API the
client cannot call or parse), imports both, and drives a short scenario with the generated
functions alone: register, log in, create an organization and an entry with an
Idempotency-Key (and replay it), read the entry back on the query API with the write's
X-Consistency-Token, then a 404 and a 422 parsed as the typed `ErrorEnvelope`.

The names used here (`create_time_entry`, `TimeEntryResponse`, `TimeEntryPage`, ...) are what
a client's code is written against: renaming one breaks every client, and this test.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BackgroundProjector, LiveServer
from tests.factories import PASSWORD

GENERATOR_TIMEOUT_SECONDS = 600  # only bounds a hung generator; it takes seconds


@dataclass
class GeneratedClient:
    """A package generated from one API's document, imported, and what the generator said."""

    package: str
    base_url: str
    report: str

    def operation(self, operation_id: str) -> Any:
        """The module of one operation (`sync_detailed`, ...), whatever tag files it under."""
        root = Path(importlib.import_module(self.package).__file__ or "").parent
        matches = sorted(root.glob(f"api/*/{operation_id}.py"))
        assert len(matches) == 1, f"{self.package}: operation {operation_id!r} in {matches}"
        tag = matches[0].parent.name
        return importlib.import_module(f"{self.package}.api.{tag}.{operation_id}")

    def model(self, name: str) -> Any:
        models = importlib.import_module(f"{self.package}.models")
        assert hasattr(models, name), f"{self.package} has no model {name!r}"
        return getattr(models, name)

    def anonymous(self) -> Any:
        client_module = importlib.import_module(f"{self.package}.client")
        return client_module.Client(
            base_url=self.base_url, timeout=httpx.Timeout(60), raise_on_unexpected_status=True
        )

    def authenticated(self, token: str) -> Any:
        client_module = importlib.import_module(f"{self.package}.client")
        return client_module.AuthenticatedClient(
            base_url=self.base_url,
            token=token,
            timeout=httpx.Timeout(60),
            raise_on_unexpected_status=True,
        )


def generate(server: LiveServer, package: str, workdir: Path) -> GeneratedClient:
    document = workdir / f"{package}.json"
    document.write_bytes(
        httpx.get(f"{server.url}/openapi.json", timeout=60).raise_for_status().content
    )
    # JSON is YAML. No post hooks: they format the code with ruff, which a client we only
    # import does not need (and the generator looks for ruff on PATH, not in our venv).
    config = workdir / f"{package}.config.yaml"
    config.write_text(json.dumps({"post_hooks": [], "package_name_override": package}))
    argv = [
        sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document),
        "--output-path", str(workdir / "packages" / package), "--meta", "none",
        "--config", str(config),
    ]  # fmt: skip
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=GENERATOR_TIMEOUT_SECONDS, check=False
    )
    report = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"openapi-python-client failed on {package}:\n{report}"
    return GeneratedClient(package, server.url, report)


@pytest.fixture(scope="module")
def generated(
    command_server: LiveServer, query_server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, GeneratedClient]]:
    workdir = tmp_path_factory.mktemp("generated_clients")
    clients = {
        "command": generate(command_server, "evotrack_command_client", workdir),
        "query": generate(query_server, "evotrack_query_client", workdir),
    }
    sys.path.insert(0, str(workdir / "packages"))
    try:
        yield clients
    finally:
        sys.path.remove(str(workdir / "packages"))
        for name in list(sys.modules):
            if name.split(".")[0] in {client.package for client in clients.values()}:
                del sys.modules[name]


@pytest.mark.parametrize("api", ["command", "query"])
def test_the_generator_reports_nothing(generated: dict[str, GeneratedClient], api: str) -> None:
    """Anything beyond "Generating …" is a warning: an operation or a schema skipped."""
    lines = generated[api].report.splitlines()
    warnings = [line for line in lines if line.strip() and not line.startswith("Generating ")]
    assert warnings == [], f"the {api} API's document:\n" + "\n".join(lines)


@pytest.fixture
def command_client(generated: dict[str, GeneratedClient]) -> GeneratedClient:
    return generated["command"]


@pytest.fixture
def query_client(generated: dict[str, GeneratedClient]) -> GeneratedClient:
    return generated["query"]


def register_and_log_in(commands: GeneratedClient) -> str:
    """Register a new user and log in: the access token."""
    email = f"generated-{uuid.uuid4().hex[:12]}@example.com"
    anonymous = commands.anonymous()
    registered = commands.operation("register_user").sync_detailed(
        client=anonymous,
        body=commands.model("RegisterRequest")(
            email=email, password=PASSWORD, full_name="Generated Client"
        ),
    )
    assert registered.status_code == 201, registered.content
    assert isinstance(registered.parsed, commands.model("UserResponse"))
    assert registered.parsed.data.email == email
    logged_in = commands.operation("log_in").sync_detailed(
        client=anonymous, body=commands.model("LoginRequest")(email=email, password=PASSWORD)
    )
    assert logged_in.status_code == 200, logged_in.content
    assert isinstance(logged_in.parsed, commands.model("TokenPairResponse"))
    token: str = logged_in.parsed.data.access_token
    return token


def create_organization(commands: GeneratedClient, client: Any) -> uuid.UUID:
    created = commands.operation("create_organization").sync_detailed(
        client=client,
        body=commands.model("OrganizationCreate")(
            name="Generated Client Ltd", timezone="UTC", currency="EUR"
        ),
    )
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, commands.model("OrganizationResponse"))
    org_id: uuid.UUID = created.parsed.data.id
    return org_id


def test_a_generated_client_drives_both_apis_typed(
    command_client: GeneratedClient,
    query_client: GeneratedClient,
    projector_running: BackgroundProjector,
) -> None:
    commands = command_client.authenticated(register_and_log_in(command_client))
    org_id = create_organization(command_client, commands)

    start_at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    body = command_client.model("TimeEntryCreate")(
        start_at=start_at, end_at=start_at + timedelta(minutes=90), description="typed"
    )
    create_time_entry = command_client.operation("create_time_entry")
    key = f"generated-{uuid.uuid4()}"
    created = create_time_entry.sync_detailed(
        org_id, client=commands, body=body, idempotency_key=key
    )
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, command_client.model("TimeEntryResponse"))
    entry = created.parsed.data
    assert isinstance(entry, command_client.model("TimeEntry"))
    assert (entry.start_at, entry.duration_seconds, entry.end_at) == (
        start_at,
        5400,
        start_at + timedelta(minutes=90),
    )
    assert "Idempotent-Replayed" not in created.headers

    replayed = create_time_entry.sync_detailed(
        org_id, client=commands, body=body, idempotency_key=key
    )
    assert replayed.status_code == 201, replayed.content
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.parsed.data.id == entry.id

    reads = query_client.authenticated(commands.token)
    page = query_client.operation("list_time_entries").sync_detailed(
        org_id, client=reads, x_consistency_token=created.headers["X-Consistency-Token"]
    )
    assert page.status_code == 200, page.content
    assert isinstance(page.parsed, query_client.model("TimeEntryPage"))
    [read] = page.parsed.data
    assert isinstance(read, query_client.model("TimeEntry"))
    assert (read.id, read.duration_seconds, read.description) == (entry.id, 5400, "typed")

    not_found = command_client.operation("delete_time_entry").sync_detailed(
        org_id, uuid.uuid4(), client=commands
    )
    assert_error(command_client, not_found, 404, "NOT_FOUND")

    malformed = query_client.operation("list_time_entries").sync_detailed(
        org_id, client=reads, page_size=0
    )
    assert_error(query_client, malformed, 422, "VALIDATION_ERROR")


def assert_error(generated: GeneratedClient, response: Any, status: int, error_code: str) -> None:
    assert response.status_code == status, response.content
    envelope = response.parsed
    assert isinstance(envelope, generated.model("ErrorEnvelope")), response.content
    assert (envelope.success, envelope.error_code) == (False, error_code)
    assert envelope.error
