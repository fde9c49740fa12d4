"""The OpenAPI documents of both APIs, as clients, generators and schemathesis read them.

FastAPI writes most of the document from the routes. Three things it cannot know, added here
once for every operation, so that a new endpoint cannot forget them:

- **Errors.** Every error is the envelope of API.md (`ErrorEnvelope`), never FastAPI's
  `{"detail": [...]}`. An operation declares what its route says (`responses=errors(400,
  409)`: the rules its service applies) plus what follows from its shape: 401 when it takes
  credentials, 404 when its path names something, 422 when it takes input, 413 when it takes
  a body, 409 when it writes (a concurrent write won: a deadlock, a lock timeout; retry),
  503 for every API call (a dependency down, a consistency wait timed out).
- **Names a client can live with.** Operation ids are the route functions' names
  (`create_time_entry`), checked unique. Schemas lose the `Read` of our DTO classes
  (`TimeEntryRead` is `TimeEntry` on the wire); `Envelope[TimeEntryRead]` is
  `TimeEntryResponse`, `PageEnvelope[TagRead]` is `TagPage`; form bodies are `…Form`.
- **Headers** the server sends with errors: `Retry-After` on 429 and 503 (and on a 409
  that a retry will get past), `WWW-Authenticate` on 401.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from shared.responses import ErrorEnvelope

ERROR_SCHEMA = "ErrorEnvelope"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "BUSINESS_RULE: a rule of the domain refuses the command",
    401: "UNAUTHORIZED: missing, invalid or expired credentials",
    403: "FORBIDDEN: inside the organization, but your role may not",
    404: "NOT_FOUND: does not exist, or belongs to an organization you are not in",
    409: "ALREADY_EXISTS / CONFLICT: a duplicate, a clash with the current state, an "
    "Idempotency-Key reused for another request, or a concurrent write that won (retry)",
    412: "PRECONDITION_FAILED: If-Match names a version that is no longer current",
    413: "PAYLOAD_TOO_LARGE: the body is larger than the server accepts",
    422: "VALIDATION_ERROR: the body, a parameter or a header is malformed "
    "(`details` lists each field)",
    429: "RATE_LIMITED: too many requests; retry after `Retry-After` seconds",
    503: "SERVICE_UNAVAILABLE / PROJECTION_LAG: a dependency is down, or the consistency wait "
    "timed out; retry after `Retry-After` seconds",
}

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: Bearer",
            "schema": {"type": "string"},
        }
    },
    409: {
        "Retry-After": {
            "description": "Seconds to wait, when a concurrent write won (a retry will do)",
            "schema": {"type": "integer"},
        }
    },
    429: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: these error statuses, each answered with the envelope."""
    return {
        code: {"model": ErrorEnvelope, "description": ERROR_DESCRIPTIONS[code]} for code in codes
    }


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and /openapi.json, /docs) answer the tidied document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = tidy_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def operation_id(route: APIRoute) -> str:
    """`generate_unique_id_function` of both apps: the route function's name."""
    return route.name


def tidy_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = ErrorEnvelope.model_json_schema()
    _check_operation_ids(spec)
    for path, method, operation in _operations(spec):
        _declare_errors(path, method, operation)
        _hoist_serialization(operation)
    for fastapi_error in ("HTTPValidationError", "ValidationError"):
        schemas.pop(fastapi_error, None)
    _rename_schemas(spec, _public_names(schemas))
    return spec


# --- Errors ------------------------------------------------------------------------------


def _declare_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code in _implied_errors(path, method, operation):
        responses.setdefault(str(code), {})
    for status, response in responses.items():
        code = int(status) if status.isdigit() else 0
        if code >= 400:
            response["description"] = ERROR_DESCRIPTIONS.get(code, response.get("description"))
            response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
            if code in _ERROR_HEADERS:
                response.setdefault("headers", {}).update(_ERROR_HEADERS[code])
    operation["responses"] = dict(sorted(responses.items()))


def _implied_errors(path: str, method: str, operation: dict[str, Any]) -> Iterator[int]:
    parameters = operation.get("parameters", [])
    api_call = path.startswith("/api/")
    if operation.get("security"):
        yield 401
    if any(parameter["in"] == "path" for parameter in parameters):
        yield 404
    if "requestBody" in operation:
        yield 413
    if api_call and method != "get":
        # Any write can lose to a concurrent one (a deadlock, a lock timeout): the error
        # handler answers 409 CONFLICT with Retry-After (shared.http._on_database_down).
        yield 409
    if parameters or "requestBody" in operation:
        yield 422
    if api_call:
        yield 503


# --- Parameters --------------------------------------------------------------------------

_SERIALIZATION = ("style", "explode")


def _hoist_serialization(operation: dict[str, Any]) -> None:
    """`style` and `explode` belong to a parameter, not to its schema, but FastAPI lets a
    route set only the schema (`Query(json_schema_extra={"explode": False})`): moved up,
    so that `group_by=user,week` is declared as the comma-separated array it is."""
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if any(key in schema for key in _SERIALIZATION):
            parameter.update({key: schema[key] for key in _SERIALIZATION if key in schema})
            parameter["schema"] = {k: v for k, v in schema.items() if k not in _SERIALIZATION}


# --- Names -------------------------------------------------------------------------------


def _check_operation_ids(spec: dict[str, Any]) -> None:
    seen: dict[str, str] = {}
    for path, method, operation in _operations(spec):
        name = operation["operationId"]
        where = f"{method.upper()} {path}"
        if name in seen:
            raise ValueError(f"operation id {name!r} names both {seen[name]} and {where}")
        seen[name] = where


def _public_names(schemas: dict[str, Any]) -> dict[str, str]:
    """Our DTO class names as clients should see them: `TimeEntryRead` → `TimeEntry`,
    FastAPI's form bodies `Body_issue_token` → `IssueTokenForm`."""
    renames: dict[str, str] = {}
    for name in schemas:
        public = _public_name(name)
        if public != name:
            renames[name] = public
    taken: dict[str, str] = {}
    for name in schemas:
        public = renames.get(name, name)
        if public in taken:
            raise ValueError(f"schemas {taken[public]!r} and {name!r} would both be {public!r}")
        taken[public] = name
    return renames


def _public_name(name: str) -> str:
    if name.startswith("Body_"):
        return "".join(part.title() for part in name.removeprefix("Body_").split("_")) + "Form"
    envelope = re.fullmatch(r"(Page)?Envelope_(.+)_", name)
    if envelope:
        return _public_name(_type_argument(envelope[2])) + ("Page" if envelope[1] else "Response")
    return name.removesuffix("Read")


def _type_argument(normalized: str) -> str:
    """The class a generic envelope was parametrized with, from pydantic's normalized name:
    `TimeEntryRead`, `Union_RunningEntryRead__NoneType_` (`data` stays nullable in the
    schema), `list_TagRead_`."""
    optional = re.fullmatch(r"Union_(.+)__NoneType_", normalized)
    if optional:
        return optional[1]
    listed = re.fullmatch(r"list_(.+)_", normalized)
    if listed:
        return _public_name(listed[1]) + "List"
    return normalized


def _rename_schemas(spec: dict[str, Any], renames: dict[str, str]) -> None:
    schemas = spec["components"]["schemas"]
    for old, new in renames.items():
        schema = schemas.pop(old)
        # Generators name their classes after the title, not the key; pydantic titles a
        # generic envelope `Envelope[TimeEntryRead]`, which would come out `EnvelopeTimeEntryRead`.
        schema["title"] = new
        schemas[new] = schema
    spec["components"]["schemas"] = dict(sorted(schemas.items()))
    prefix = "#/components/schemas/"
    _rewrite_refs(spec, lambda ref: prefix + renames.get(ref.removeprefix(prefix), ""))


def _rewrite_refs(node: Any, rename: Callable[[str], str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            renamed = rename(ref)
            if not renamed.endswith("/"):
                node["$ref"] = renamed
        for value in node.values():
            _rewrite_refs(value, rename)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, rename)


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if method in {"get", "put", "post", "patch", "delete"}:
                yield path, method, operation
