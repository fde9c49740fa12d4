"""The command API with one more route, `POST /bench/noop`, for B1's ceiling: what the same
app, server and client cost for a request that does nothing (no authentication, no
database). Only the benchmarks serve it (`uvicorn bench.noop_app:create_app --factory`);
the product's app has no such route."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from command_api.main import create_app as create_command_app

NOOP_PATH = "/bench/noop"


def noop(payload: dict[str, Any]) -> dict[str, Any]:
    """Parse the body like any command and answer 201 without doing anything.

    A plain `def`, as the command endpoints are: it runs in the same thread pool."""
    return {"success": True, "data": None}


def create_app() -> FastAPI:
    app = create_command_app()
    app.add_api_route(NOOP_PATH, noop, methods=["POST"], status_code=201)
    return app
