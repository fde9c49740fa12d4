"""The shared HTTP layer: every error is the envelope, never a stack trace."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.config import Settings
from shared.errors import ConflictError, RateLimitedError


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

    @app.get("/fail")
    def fail() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


def test_a_value_the_database_cannot_store_is_422_not_500() -> None:
    from sqlalchemy.exc import DataError

    response = _client_raising(DataError("INSERT", {}, _FakeDriverError("22021"))).get("/fail")
    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert "22021" in response.json()["details"][0]["message"]


def test_a_deadlock_is_a_retryable_409_not_a_503() -> None:
    from sqlalchemy.exc import OperationalError

    response = _client_raising(OperationalError("UPDATE", {}, _FakeDriverError("40P01"))).get(
        "/fail"
    )
    assert response.status_code == 409
    assert response.json()["error_code"] == "CONFLICT"
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
