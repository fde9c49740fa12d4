"""The query API's operations endpoints on the real database and Redis: health,
readiness, metrics, and the error envelope for unknown paths."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import LiveServer


@pytest.fixture(scope="module")
def query_server(environment: None) -> Iterator[LiveServer]:
    from query_api.main import create_app

    with LiveServer(create_app()) as server:
        yield server


@pytest.fixture
def query(query_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=query_server.url, timeout=30) as client:
        yield client


def test_health(query: httpx.Client) -> None:
    response = query.get("/health")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"status": "ok"}}


def test_ready_checks_the_read_database_and_redis(query: httpx.Client) -> None:
    response = query.get("/ready")
    assert response.status_code == 200
    assert response.json()["data"] == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "ok"},
    }


def test_metrics_count_the_query_api_requests(query: httpx.Client) -> None:
    query.get("/health")
    query.get("/api/v1/nowhere")
    response = query.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert (
        'evotrack_http_requests_total{app="query_api",method="GET",route="/health",status="200"}'
        in body
    )
    assert 'app="query_api",method="GET",route="<unmatched>",status="404"' in body
    assert 'evotrack_http_request_duration_seconds_bucket{app="query_api"' in body


def test_unknown_path_and_wrong_method_answer_the_envelope(query: httpx.Client) -> None:
    missing = query.get("/api/v1/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {
        "success": False,
        "error": "No such endpoint",
        "error_code": "NOT_FOUND",
        "details": None,
    }
    wrong = query.post("/health")
    assert wrong.status_code == 405
    assert wrong.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_responses_carry_a_request_id(query: httpx.Client) -> None:
    assert (
        query.get("/health", headers={"X-Request-ID": "q-123"}).headers["x-request-id"] == "q-123"
    )
    assert query.get("/health").headers["x-request-id"]


def test_the_openapi_document_names_the_query_api(query: httpx.Client) -> None:
    document = query.get("/openapi.json").json()
    assert document["info"]["title"] == "EvoTrack query API"
