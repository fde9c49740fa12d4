"""The OpenAPI documents of both APIs: names a client can live with, and every error as the
envelope the server sends."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from command_api.main import create_app as create_command_app
from query_api.main import create_app as create_query_app
from shared.openapi import tidy_openapi

METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module", params=["command", "query"])
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    factory = create_command_app if request.param == "command" else create_query_app
    app: FastAPI = factory()
    return app.openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_operation_ids_are_snake_case_function_names(spec: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))
    assert [name for name in ids if not re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", name)] == []
    assert [name for name in ids if len(name) > 40] == []


def test_schema_names_are_plain_class_names(spec: dict[str, Any]) -> None:
    names = spec["components"]["schemas"]
    assert [name for name in names if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name)] == []
    assert "HTTPValidationError" not in names
    assert [name for name in names if name.endswith("Read")] == []


def test_every_error_is_the_envelope(spec: dict[str, Any]) -> None:
    wrong = [
        (method, path, status)
        for path, method, operation in operations(spec)
        for status, response in operation["responses"].items()
        if int(status) >= 400
        and response["content"]["application/json"]["schema"]
        != {"$ref": "#/components/schemas/ErrorEnvelope"}
    ]
    assert wrong == []


def test_errors_implied_by_an_operations_shape_are_declared(spec: dict[str, Any]) -> None:
    missing = []
    for path, method, operation in operations(spec):
        if not path.startswith("/api/"):
            continue
        declared = set(operation["responses"])
        parameters = operation.get("parameters", [])
        expected = {"503"}
        if operation.get("security"):
            expected.add("401")
        if any(parameter["in"] == "path" for parameter in parameters):
            expected.add("404")
        if parameters or "requestBody" in operation:
            expected.add("422")
        if expected - declared:
            missing.append((method, path, sorted(expected - declared)))
    assert missing == []


def test_renaming_refuses_two_schemas_with_one_public_name() -> None:
    clashing = {
        "paths": {},
        "components": {"schemas": {"TagRead": {"title": "TagRead"}, "Tag": {"title": "Tag"}}},
    }
    with pytest.raises(ValueError, match="'Tag'"):
        tidy_openapi(clashing)


def test_renaming_rewrites_every_reference() -> None:
    document = {
        "paths": {
            "/tags": {
                "get": {
                    "operationId": "list_tags",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/PageEnvelope_TagRead_"}
                                }
                            },
                        }
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "PageEnvelope_TagRead_": {
                    "title": "PageEnvelope[TagRead]",
                    "properties": {
                        "data": {"items": {"$ref": "#/components/schemas/TagRead"}},
                    },
                },
                "TagRead": {"title": "TagRead"},
            }
        },
    }
    tidied = tidy_openapi(document)
    schemas = tidied["components"]["schemas"]
    assert set(schemas) == {"TagPage", "Tag", "ErrorEnvelope"}
    assert schemas["TagPage"]["properties"]["data"]["items"] == {"$ref": "#/components/schemas/Tag"}
    response = tidied["paths"]["/tags"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TagPage"
    }


def test_every_schema_is_titled_by_its_name(spec: dict[str, Any]) -> None:
    """Generated clients name their classes after the title: `TimeEntryResponse`, not
    pydantic's `Envelope[TimeEntryRead]` (`EnvelopeTimeEntryRead`)."""
    schemas = spec["components"]["schemas"]
    mistitled = [(name, s["title"]) for name, s in schemas.items() if s.get("title", name) != name]
    assert mistitled == []
