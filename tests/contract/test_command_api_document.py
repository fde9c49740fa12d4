"""What the command API's OpenAPI document says beyond what schemathesis checks: types a
generated client can use, and names it can live with."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from command_api.main import create_app


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app().openapi()


def _enums(node: Any, where: str = "") -> Iterator[tuple[str, list[Any]]]:
    if isinstance(node, dict):
        if "enum" in node:
            yield where, node["enum"]
        for key, value in node.items():
            yield from _enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _enums(value, f"{where}/{index}")


def test_a_bulk_item_is_typed_as_the_body_of_a_single_create(spec: dict[str, Any]) -> None:
    bulk = spec["components"]["schemas"]["TimeEntryBulkCreate"]
    assert bulk["properties"]["entries"]["items"] == {
        "$ref": "#/components/schemas/TimeEntryCreate"
    }


def test_enums_are_declared_once_as_schemas_and_reused(spec: dict[str, Any]) -> None:
    named = {f"/components/schemas/{name}" for name in spec["components"]["schemas"]}
    inline = [
        (where, values)
        for where, values in _enums(spec)
        if where not in named and not where.endswith("/headers/Idempotent-Replayed/schema")
    ]
    assert inline == []
    assert spec["components"]["schemas"]["Role"]["enum"] == ["member", "manager", "admin", "owner"]


def test_operations_are_named_for_what_they_do(spec: dict[str, Any]) -> None:
    ids = {
        (method.upper(), path): operation["operationId"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    assert ids[("POST", "/api/v1/auth/register")] == "register_user"
    assert ids[("POST", "/api/v1/auth/token")] == "issue_token"
    assert ids[("POST", "/api/v1/organizations/{org_id}/time-entries")] == "create_time_entry"
    assert ids[("GET", "/health")] == "get_health"
    assert ids[("GET", "/ready")] == "get_readiness"


def test_readiness_declares_its_503_and_both_operations_answers_are_named(
    spec: dict[str, Any],
) -> None:
    ready = spec["paths"]["/ready"]["get"]["responses"]
    assert ready["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }
    assert ready["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReadinessResponse"
    }
    health = spec["paths"]["/health"]["get"]["responses"]["200"]
    assert health["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HealthResponse"
    }
