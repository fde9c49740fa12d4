"""Health, readiness, metrics and the error envelope of both apps."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from evotrack.embedded import free_port
from evotrack.run import api_argv, metrics_dir


def test_health_and_ready(raw_api: httpx.Client) -> None:
    assert raw_api.get("/health").json()["data"]["status"] == "ok"
    ready = raw_api.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["data"]["checks"] == {"database": "ok", "redis": "ok"}


def test_metrics_count_requests_by_route_and_status(raw_api: httpx.Client) -> None:
    raw_api.get("/health")
    raw_api.get("/api/v1/nowhere")
    body = raw_api.get("/metrics").text
    assert (
        'evotrack_http_requests_total{app="command_api",method="GET",route="/health",status="200"}'
        in body
    )
    assert 'route="<unmatched>",status="404"' in body
    assert "evotrack_http_request_duration_seconds_bucket" in body


def test_unknown_path_and_wrong_method_use_the_envelope(raw_api: httpx.Client) -> None:
    missing = raw_api.get("/api/v1/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {
        "success": False,
        "error": "No such endpoint",
        "error_code": "NOT_FOUND",
        "details": None,
    }
    wrong = raw_api.delete("/health")
    assert wrong.status_code == 405
    assert wrong.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_requests_carry_an_id(raw_api: httpx.Client) -> None:
    response = raw_api.get("/health", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    assert raw_api.get("/health").headers["x-request-id"]


def test_metrics_show_projection_lag_dead_letters_and_queue_depth(
    raw_api: httpx.Client, db: Engine
) -> None:
    from projections.registry import PROJECTIONS
    from projections.runner import advance

    for projector in PROJECTIONS:
        advance(sessionmaker(bind=db), projector, max_batches=1)
    body = raw_api.get("/metrics").text
    for name in ("catalog", "entries"):
        assert f'evotrack_projection_lag_changes{{projection="{name}"}}' in body
        assert f'evotrack_projection_lag_seconds{{projection="{name}"}}' in body
        assert f'evotrack_projection_dead_letters{{projection="{name}"}}' in body
    assert 'evotrack_queue_depth{queue="projections"}' in body


def test_a_nul_character_is_refused_with_422_not_500(api: httpx.Client) -> None:
    response = api.post(
        "/auth/register",
        json={"email": "nul@example.com", "password": "long enough pass", "full_name": "a\u0000b"},
    )
    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    login = api.post("/auth/login", json={"email": "a\u0000@x.io", "password": "whatever"})
    assert login.status_code in (401, 422)


def test_several_api_processes_report_their_requests_together(
    environment: None, tmp_path: Path
) -> None:
    """`evotrack run` serves each API with several uvicorn workers; /metrics, whichever
    worker answers, counts the requests of all of them and still shows projection lag."""
    port = free_port()
    metrics = metrics_dir(tmp_path, "command API")
    process = subprocess.Popen(
        api_argv("command_api.main", "127.0.0.1", port, workers=2),
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{root}/health").status_code == 200:
                    break
            time.sleep(0.1)
        # Fresh connections, so that both workers answer some of them.
        for _ in range(40):
            assert httpx.get(f"{root}/ready").status_code == 200
        assert len(list(metrics.glob("counter_*.db"))) == 2  # both workers served requests
        for _ in range(4):
            body = httpx.get(f"{root}/metrics").text
            ready = 'app="command_api",method="GET",route="/ready",status="200"'
            assert f"evotrack_http_requests_total{{{ready}}} 40.0" in body
            assert 'evotrack_projection_lag_changes{projection="entries"}' in body
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
