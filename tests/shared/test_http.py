"""The shared HTTP layer: every error is the envelope, never a stack trace; every
response carries the security headers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import Engine

from shared.config import Settings, get_settings
from shared.errors import ConflictError, RateLimitedError
from tests.conftest import BackgroundProjector, LiveServer
from tests.factories import make_user


class Body(BaseModel):
    count: int


def make_client(max_body_bytes: int = 1024) -> TestClient:
    from shared.http import configure_app

    app = FastAPI()
    configure_app(app, Settings(max_request_body_bytes=max_body_bytes), app_name="test")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM users")

    @app.get("/conflict")
    def conflict() -> None:
        raise ConflictError("Timer already running", details={"entry_id": "x"})

    @app.get("/limited")
    def limited() -> None:
        raise RateLimitedError(7)

    @app.post("/items")
    def items(body: Body) -> dict[str, int]:
        return {"count": body.count}

    return TestClient(app, raise_server_exceptions=False)


def test_an_unexpected_error_is_a_bare_500_envelope() -> None:
    response = make_client().get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "success": False,
        "error": "An internal error occurred",
        "error_code": "INTERNAL_ERROR",
        "details": None,
    }
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text


def test_domain_errors_keep_their_status_details_and_headers() -> None:
    client = make_client()
    conflict = client.get("/conflict")
    assert conflict.status_code == 409
    assert conflict.json()["error_code"] == "CONFLICT"
    assert conflict.json()["details"] == {"entry_id": "x"}
    limited = client.get("/limited")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("content", "field"),
    [(b'{"count": "many"}', "count"), (b"{}", "count"), (b'{"count": 1', "body")],
)
def test_malformed_bodies_are_422_naming_the_field(content: bytes, field: str) -> None:
    response = make_client().post(
        "/items", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert any(field in detail["field"] for detail in body["details"])


def test_a_body_over_the_limit_is_413() -> None:
    response = make_client(max_body_bytes=100).post("/items", content=b"x" * 500)
    assert response.status_code == 413
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"


def test_production_refuses_a_default_or_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(environment="production", _env_file=None)
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(environment="production", secret_key="short")
    assert Settings(environment="production", secret_key="x" * 40).is_production


class _FakeDriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _client_raising(exc: Exception) -> TestClient:
    from shared.http import configure_app

    app = FastAPI()
    configure_app(app, Settings(), app_name="test")

    @app.api_route("/fail", methods=["GET", "POST"])
    def fail() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


def test_a_value_the_database_cannot_store_is_422_not_500() -> None:
    from sqlalchemy.exc import DataError

    response = _client_raising(DataError("INSERT", {}, _FakeDriverError("22021"))).get("/fail")
    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert "22021" in response.json()["details"][0]["message"]


def test_a_deadlock_of_a_command_is_a_retryable_409_not_a_503() -> None:
    from sqlalchemy.exc import OperationalError

    response = _client_raising(OperationalError("UPDATE", {}, _FakeDriverError("40P01"))).post(
        "/fail"
    )
    assert response.status_code == 409
    assert response.json()["error_code"] == "CONFLICT"
    assert response.headers["retry-after"] == "1"


def test_a_row_written_between_its_read_and_its_write_is_a_retryable_409() -> None:
    from sqlalchemy.orm.exc import StaleDataError

    response = _client_raising(StaleDataError("expected 1 row, 0 matched")).post("/fail")
    assert response.status_code == 409
    assert response.json()["error_code"] == "CONFLICT"
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("sqlstate", ["40P01", "40001", "55P03"])
def test_a_read_that_gives_way_is_a_retryable_503_never_a_409(sqlstate: str) -> None:
    # A GET conflicts with no client's write, only with maintenance (a rebuild's swap, or
    # a replica cancelling a query that blocks replay with 40001).
    from sqlalchemy.exc import OperationalError

    response = _client_raising(OperationalError("SELECT", {}, _FakeDriverError(sqlstate))).get(
        "/fail"
    )
    assert response.status_code == 503
    assert response.json()["error_code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["retry-after"] == "1"


def test_a_body_the_framework_cannot_parse_is_422() -> None:
    response = make_client().post(
        "/items", content=b'{"count": "\xff"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body"


def test_the_year_range_applies_to_the_utc_instant() -> None:
    from pydantic import TypeAdapter, ValidationError

    from shared.time import Timestamp

    adapter = TypeAdapter(Timestamp)
    with pytest.raises(ValidationError):
        adapter.validate_python("2100-12-31T23:30:00-14:00")  # 2101 in UTC
    with pytest.raises(ValidationError):
        adapter.validate_python("1970-01-01T00:00:00+14:00")  # 1969 in UTC
    with pytest.raises(ValidationError):
        adapter.validate_python(12)  # not a Unix time


# --- Security headers ---------------------------------------------------------------

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
OPS_TOKEN = "ops-token-for-the-tests-0123456789"


def assert_security_headers(response: httpx.Response, *, production: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], (name, response.headers)
    hsts = response.headers.get_list("strict-transport-security")
    assert hsts == (["max-age=31536000; includeSubDomains"] if production else [])


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/health", 200),
        ("/metrics", 200),  # open outside production
        ("/docs", 200),
        ("/openapi.json", 200),
        ("/api/v1/no-such-endpoint", 404),
        ("/api/v1/organizations", 401),  # the envelope of a refused credential
    ],
)
@pytest.mark.parametrize("app", ["command", "query"])
def test_every_response_of_both_apis_carries_the_security_headers(
    request: pytest.FixtureRequest, app: str, path: str, status: int
) -> None:
    server: LiveServer = request.getfixturevalue(f"{app}_server")
    method = "POST" if (app, path) == ("command", "/api/v1/organizations") else "GET"
    response = httpx.request(method, f"{server.url}{path}", timeout=30)
    assert response.status_code == status, response.text
    assert_security_headers(response)


def test_a_422_and_the_token_responses_carry_them(api: httpx.Client, db: Engine) -> None:
    malformed = api.post("/auth/register", json={"email": "not an address"})
    assert malformed.status_code == 422
    assert_security_headers(malformed)
    user = make_user(db)
    signed_in = api.post("/auth/login", json={"email": user.email, "password": user.password})
    assert signed_in.status_code == 200, signed_in.text
    assert_security_headers(signed_in)  # one Cache-Control, not the router's and ours
    token = api.post("/auth/token", data={"username": user.email, "password": user.password})
    assert token.status_code == 200, token.text
    assert_security_headers(token)


def test_an_authenticated_read_is_not_stored(
    qapi: httpx.Client, db: Engine, projector_running: BackgroundProjector
) -> None:
    user = make_user(db)
    deadline = time.monotonic() + 60  # bounds a failure only: the projector adds the user
    response = qapi.get("/me", headers=user.headers)
    while response.status_code in (401, 503) and time.monotonic() < deadline:
        time.sleep(0.05)
        response = qapi.get("/me", headers=user.headers)
    assert response.status_code == 200, response.text
    assert_security_headers(response)


def test_a_500_and_a_413_carry_them_and_the_request_id() -> None:
    client = make_client(max_body_bytes=100)
    for response in (client.get("/boom"), client.post("/items", content=b"x" * 500)):
        assert response.status_code in (500, 413)
        assert response.json()["success"] is False
        assert_security_headers(response)
        assert response.headers["x-request-id"]


def test_a_response_that_sets_its_own_cache_policy_keeps_it() -> None:
    from fastapi.responses import Response

    from shared.http import configure_app

    app = FastAPI()
    configure_app(app, Settings(), app_name="test")

    @app.get("/cached")
    def cached() -> Response:
        return Response(b"x", headers={"Cache-Control": "max-age=60"})

    response = TestClient(app).get("/cached")
    assert response.headers.get_list("cache-control") == ["max-age=60"]


@pytest.fixture
def production_apps(environment: None) -> Iterator[dict[str, TestClient]]:
    """Both apps built and served in this process with ENVIRONMENT=production."""
    from command_api.main import create_app as command_app
    from query_api.main import create_app as query_app

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENVIRONMENT", "production")
        patch.setenv("OPS_TOKEN", OPS_TOKEN)
        get_settings.cache_clear()
        try:
            yield {"command": TestClient(command_app()), "query": TestClient(query_app())}
        finally:
            patch.undo()
            get_settings.cache_clear()


@pytest.mark.parametrize("app", ["command", "query"])
def test_production_adds_hsts_and_guards_metrics_with_the_ops_token(
    production_apps: dict[str, TestClient], app: str
) -> None:
    client = production_apps[app]
    health = client.get("/health")
    assert health.status_code == 200
    assert_security_headers(health, production=True)

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": OPS_TOKEN}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error_code"] == "UNAUTHORIZED"
        assert "evotrack_http_requests_total" not in refused.text
        assert_security_headers(refused, production=True)

    allowed = client.get("/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
    assert allowed.status_code == 200
    assert "evotrack_http_requests_total" in allowed.text
    assert_security_headers(allowed, production=True)


def test_production_without_an_ops_token_refuses_metrics(
    production_apps: dict[str, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPS_TOKEN")
    get_settings.cache_clear()
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {OPS_TOKEN}"}):
        response = production_apps["command"].get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHORIZED"
