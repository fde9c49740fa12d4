"""The `route` label of the request metrics: the path template of whatever route served a
request (an APIRoute, a plain Route like /docs and /openapi.json, a Mount's prefix), and
`<unmatched>` only for a request no route matched (a 404)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.staticfiles import StaticFiles

from shared.config import Settings
from shared.http import configure_app
from tests.conftest import LiveServer


def requests_counted(app: str, method: str, route: str, status: int) -> float:
    labels = {"app": app, "method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("evotrack_http_requests_total", labels) or 0.0


@pytest.mark.parametrize(("server", "app"), [("command", "command_api"), ("query", "query_api")])
def test_the_docs_and_the_openapi_document_are_routes_in_the_metrics(
    request: pytest.FixtureRequest, server: str, app: str
) -> None:
    live: LiveServer = request.getfixturevalue(f"{server}_server")
    with httpx.Client(base_url=live.url, timeout=30) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
        body = client.get("/metrics").text
    for route in ("/openapi.json", "/docs"):
        assert (
            f'evotrack_http_requests_total{{app="{app}",method="GET",route="{route}",status="200"}}'
            in body
        )


def test_a_mount_counts_under_its_prefix_and_only_a_404_is_unmatched(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("a {}")
    (tmp_path / "b.js").write_text("b()")
    name = f"labels-{uuid.uuid4().hex[:8]}"
    app = FastAPI()
    configure_app(app, Settings(), app_name=name)

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    def plain(_: Request) -> PlainTextResponse:
        return PlainTextResponse("plain")

    app.add_route("/plain", plain)
    app.mount("/assets", StaticFiles(directory=tmp_path))
    client = TestClient(app)

    assert client.get("/items/1").status_code == 200
    assert client.get("/items/2").status_code == 200
    assert client.get("/plain").status_code == 200
    assert client.post("/plain").status_code == 405
    assert client.get("/assets/a.css").status_code == 200
    assert client.get("/assets/b.js").status_code == 200
    assert client.get("/assets/missing.png").status_code == 404
    assert client.get("/nowhere").status_code == 404

    assert requests_counted(name, "GET", "/items/{item_id}", 200) == 2
    assert requests_counted(name, "GET", "/plain", 200) == 1
    assert requests_counted(name, "POST", "/plain", 405) == 1
    assert requests_counted(name, "GET", "/assets", 200) == 2  # one series, not one a file
    assert requests_counted(name, "GET", "/assets", 404) == 1  # the mount answered it
    assert requests_counted(name, "GET", "<unmatched>", 404) == 1
