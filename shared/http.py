"""What both FastAPI apps share: the error envelope for every error, request ids, body
limits, security headers, metrics, health and readiness."""

from __future__ import annotations

import gc
import hmac
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import Settings, get_settings
from shared.docs import content_security_policy
from shared.errors import EvoTrackError, UnauthorizedError
from shared.logging import request_id_var
from shared.metrics import metrics_payload
from shared.openapi import errors
from shared.responses import error_body

log = logging.getLogger("evotrack.http")

REQUESTS = Counter(
    "evotrack_http_requests_total", "HTTP requests", ["app", "method", "route", "status"]
)
LATENCY = Histogram(
    "evotrack_http_request_duration_seconds",
    "HTTP request latency",
    ["app", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


def envelope_response(
    status_code: int,
    message: str,
    error_code: str,
    details: Any | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        status_code=status_code,
        content=jsonable_encoder(error_body(message, error_code, details)),
        headers=headers,
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            # The body is not JSON at all: name the body and where parsing stopped.
            position = location[1] if len(location) > 1 else "?"
            details.append(
                {
                    "field": "body",
                    "location": "body",
                    "message": f"Invalid JSON at character {position}: {error.get('msg')}",
                    "type": "json_invalid",
                }
            )
            continue
        details.append(
            {
                "field": ".".join(location[1:]) if len(location) > 1 else ".".join(location),
                "location": location[0] if location else "body",
                "message": error.get("msg", "invalid"),
                "type": error.get("type", "value_error"),
            }
        )
    return details


async def _on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EvoTrackError)
    return envelope_response(exc.status_code, exc.message, exc.error_code, exc.details, exc.headers)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return envelope_response(
        422, "The request is malformed", "VALIDATION_ERROR", _validation_details(exc)
    )


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = "No such endpoint"
    if exc.status_code == 400:
        # The framework could not even parse the body (bad encoding, absurd nesting).
        return envelope_response(
            422, "The request is malformed", "VALIDATION_ERROR", [_body_detail(message)]
        )
    return envelope_response(exc.status_code, message, code, headers=exc.headers)


def _body_detail(message: str) -> dict[str, str]:
    return {"field": "body", "location": "body", "message": message, "type": "body_invalid"}


async def _on_data_error(_: Request, exc: Exception) -> JSONResponse:
    # A value PostgreSQL cannot store (a NUL character, a number out of range) is the
    # client's input: 422, never a 500. Schemas refuse the ones they know first.
    assert isinstance(exc, DataError)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    log.warning("data error reached the handler: %s", sqlstate)
    return envelope_response(
        422,
        "A value in the request cannot be stored (for example a NUL character or a number"
        " out of range)",
        "VALIDATION_ERROR",
        [_body_detail(f"rejected by the database (SQLSTATE {sqlstate})")],
    )


async def _on_integrity_error(_: Request, exc: Exception) -> JSONResponse:
    # Services translate the violations they expect; this keeps a race that slips past
    # them a 409 and never a 500.
    assert isinstance(exc, IntegrityError)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    log.warning("integrity error reached the handler: %s", sqlstate)
    if sqlstate == "23505":
        return envelope_response(409, "A record with these values already exists", "ALREADY_EXISTS")
    if sqlstate == "23P01":
        return envelope_response(409, "The change conflicts with existing data", "CONFLICT")
    if sqlstate == "23503":
        return envelope_response(404, "A referenced record does not exist", "NOT_FOUND")
    return envelope_response(409, "The change conflicts with existing data", "CONFLICT")


_RETRYABLE = {"40P01": "deadlock", "40001": "serialization failure", "55P03": "lock timeout"}


_READ_METHODS = frozenset({"GET", "HEAD"})


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate in _RETRYABLE and request.method in _READ_METHODS:
        # A read changes nothing, so it conflicts with no client's write: only maintenance
        # (a rebuild's swap, a replica replaying one) can make it give way. The service is
        # briefly busy, not the request wrong: 503, never a 409 on a GET.
        log.warning("read gave way to maintenance: %s", _RETRYABLE[sqlstate])
        return envelope_response(
            503,
            "The data is briefly locked by maintenance; retry the request",
            "SERVICE_UNAVAILABLE",
            headers={"Retry-After": "1"},
        )
    if sqlstate in _RETRYABLE:
        # Two requests collided; the database chose this one to give way. Retrying works.
        log.warning("concurrent conflict: %s", _RETRYABLE[sqlstate])
        return envelope_response(
            409,
            "The request conflicted with a concurrent change; retry it",
            "CONFLICT",
            headers={"Retry-After": "1"},
        )
    log.error("database unavailable: %s", exc)
    return envelope_response(
        503, "The database is unavailable", "SERVICE_UNAVAILABLE", headers={"Retry-After": "2"}
    )


async def _on_stale_row(_: Request, exc: Exception) -> JSONResponse:
    # SQLAlchemy's version counter (shared.db.Versioned) found the row written by another
    # transaction since this one read it. Commands lock a row before they change it, so a
    # path that did not is the bug; the client still only needs to retry.
    log.error("a row changed between its read and its write: %s", exc)
    return envelope_response(
        409,
        "The request conflicted with a concurrent change; retry it",
        "CONFLICT",
        headers={"Retry-After": "1"},
    )


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    return _internal_error(exc)


def _internal_error(exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return envelope_response(500, "An internal error occurred", "INTERNAL_ERROR")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EvoTrackError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(OperationalError, _on_database_down)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(StaleDataError, _on_stale_row)
    app.add_exception_handler(DBAPIError, _on_unexpected)
    app.add_exception_handler(Exception, _on_unexpected)


Header = tuple[bytes, bytes]
_CACHE_CONTROL = b"cache-control"
_NO_STORE: Header = (_CACHE_CONTROL, b"no-store")
HSTS: Header = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def security_headers(*, production: bool, command_api_url: str = "") -> tuple[Header, ...]:
    """What every response carries, as raw ASGI pairs built once per app.

    `nosniff`: a browser never reads a JSON error as HTML or script. `DENY`: no other site
    frames our pages (/docs). `no-referrer`: our URLs, which name records, are not sent to
    the sites a page links to. HSTS only in production, behind TLS: over the plain http of
    development it would only teach a browser to insist on https for localhost. The
    Content-Security-Policy lets the docs pages run only their own scripts, served by us,
    and connect only to us and to the command API (`shared.docs.content_security_policy`)."""
    policy = content_security_policy(production=production, command_api_url=command_api_url)
    headers = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", policy.encode()),
    )
    return (*headers, HSTS) if production else headers


class RequestContextMiddleware:
    """Request id, body-size limit, security headers, metrics and one access-log line per
    request; an unexpected error becomes the 500 envelope here, with those headers.

    `Cache-Control: no-store` goes on every response that sets no cache policy of its own:
    tokens (login, refresh, API tokens) and every authenticated read are private, and
    nothing these APIs answer is worth a stale copy in a shared cache."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        app_name: str,
        max_body_bytes: int,
        response_headers: Sequence[Header] = security_headers(production=False),
    ) -> None:
        self.app = app
        self.app_name = app_name
        self.max_body_bytes = max_body_bytes
        self.response_headers = tuple(response_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode()[:64] or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                message["headers"] = self._with_our_headers(message.get("headers", ()))
                message["headers"].append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            if self._too_large(headers):
                response = envelope_response(
                    413,
                    f"The request body exceeds {self.max_body_bytes} bytes",
                    "PAYLOAD_TOO_LARGE",
                )
                await response(scope, receive, send_with_id)
                return
            await self.app(scope, self._limited(receive), send_with_id)
        except Exception as exc:
            # Starlette answers an unhandled error outside every middleware (without our
            # headers); answer it here. Once a response has started, only closing is left.
            if status["sent"]:
                raise
            await _internal_error(exc)(scope, receive, send_with_id)
        finally:
            self._observe(scope, status["code"], time.perf_counter() - started)
            request_id_var.reset(token)

    def _with_our_headers(self, headers: Sequence[Header]) -> list[Header]:
        """The response's headers (copied: a response object may be sent again), ours
        appended, and no-store unless the response chose its own cache policy."""
        merged = [*headers, *self.response_headers]
        if not any(name.lower() == _CACHE_CONTROL for name, _ in headers):
            merged.append(_NO_STORE)
        return merged

    def _too_large(self, headers: dict[bytes, bytes]) -> bool:
        length = headers.get(b"content-length")
        return length is not None and length.isdigit() and int(length) > self.max_body_bytes

    def _limited(self, receive: Receive) -> Receive:
        seen = {"bytes": 0}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes"] += len(message.get("body", b""))
                if seen["bytes"] > self.max_body_bytes:
                    raise StarletteHTTPException(413, "The request body is too large")
            return message

        return limited_receive

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        path = route_label(scope)
        method = scope.get("method", "")
        if path not in ("/metrics", "/health"):
            log.info(
                "request",
                extra={
                    "method": method,
                    # A path that carries a secret (a shared report's token) is logged as
                    # its route's template.
                    "path": path if SECRET_IN_PATH in path else scope.get("path"),
                    "status": status,
                    "ms": round(seconds * 1000, 2),
                },
            )
        REQUESTS.labels(self.app_name, method, path, str(status)).inc()
        LATENCY.labels(self.app_name, method, path).observe(seconds)


UNMATCHED_ROUTE = "<unmatched>"
SECRET_IN_PATH = "{token}"


def route_label(scope: Scope) -> str:
    """The route of a request for the metrics: its path template, never the path itself.

    An APIRoute's, which FastAPI leaves in the scope; else that of whichever other route of
    the app served it (/docs, /openapi.json: plain Routes; a Mount: its prefix, whatever
    file under it was asked for). `<unmatched>` only when no route matched: a 404."""
    route = scope.get("route") or _route_that_matched(scope)
    if route is None:
        return UNMATCHED_ROUTE
    return getattr(route, "path", "") or "/"  # a Mount at the root has the prefix ""


def _route_that_matched(scope: Scope) -> BaseRoute | None:
    """The route the app's router chose for this request, found again as it found it:
    the first full match, else the first partial one (a wrong method: the 405 is its)."""
    routes: Sequence[BaseRoute] = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    # A Mount moved `root_path` on; `app_root_path` keeps the one the router started with.
    probe = {**scope, "root_path": scope.get("app_root_path", scope.get("root_path", ""))}
    partial = None
    for route in routes:
        match, _ = route.matches(probe)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def configure_app(app: FastAPI, settings: Settings, *, app_name: str) -> None:
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Consistency-Token", "X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        RequestContextMiddleware,
        app_name=app_name,
        max_body_bytes=settings.max_request_body_bytes,
        response_headers=security_headers(
            production=settings.is_production, command_api_url=settings.command_api_url
        ),
    )


def settle_heap() -> None:
    """Tune the garbage collector for serving, once per process, when the app is built.

    What is alive by then (modules, routes, schemas, SQLAlchemy's mappers) lives as long as
    the process: `gc.freeze()` takes it out of every later collection. And a request may
    allocate tens of thousands of objects that all live until its response (a 1000-entry
    bulk create): with the default gen-0 threshold of 700 the collector runs dozens of
    times a request, re-walking them. Together ~25 % of a bulk create's time (B2: 153 ms
    a request before, ~120 ms after); a lone POST is a little cheaper too."""
    if gc.get_freeze_count():
        return
    gc.set_threshold(10_000, 10, 10)
    gc.freeze()


ReadinessCheck = Callable[[], None]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class HealthResponse(BaseModel):
    success: Literal[True] = True
    data: Health


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(description="Each dependency checked: `ok`")


class ReadinessResponse(BaseModel):
    success: Literal[True] = True
    data: Readiness


def operations_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    """`/health`, `/ready` and `/metrics`, the same on both apps."""
    router = APIRouter(tags=["operations"])

    @router.get("/health", response_model=HealthResponse)
    def get_health() -> dict[str, Any]:
        """The process is up."""
        return {"success": True, "data": {"status": "ok"}}

    @router.get("/ready", response_model=ReadinessResponse, responses=errors(503))
    def get_readiness() -> JSONResponse:
        """The database and Redis answer (503 naming each check when one does not)."""
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # readiness reports any failure, it never raises
                results[name] = f"unavailable: {type(exc).__name__}"
        if all(value == "ok" for value in results.values()):
            return JSONResponse({"success": True, "data": {"status": "ready", "checks": results}})
        return envelope_response(
            503, "Not ready", "SERVICE_UNAVAILABLE", {"checks": results}, {"Retry-After": "2"}
        )

    @router.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        """Prometheus exposition. In production only for the ops token (none set: for
        nobody): it tells whoever asks the routes, the traffic and the backlog."""
        if get_settings().is_production and not is_ops_token(bearer_credentials(request)):
            raise UnauthorizedError("/metrics requires the ops token in production")
        return Response(metrics_payload(), media_type=CONTENT_TYPE_LATEST)

    return router


def bearer_credentials(request: Request) -> str:
    """The credentials of an `Authorization: Bearer …` header; "" without one."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def is_ops_token(presented: str) -> bool:
    """Whether `presented` is the operators' token (OPS_TOKEN; never when it is unset),
    compared in constant time."""
    ops_token = get_settings().ops_token
    if ops_token is None or not presented:
        return False
    # As bytes: compare_digest refuses str with non-ASCII characters (a header may have).
    return hmac.compare_digest(presented.encode(), ops_token.get_secret_value().encode())


def database_check(engine_factory: Callable[[], Any]) -> ReadinessCheck:
    def check() -> None:
        with engine_factory().connect() as connection:
            connection.execute(text("SELECT 1"))

    return check


def redis_check(client_factory: Callable[[], Any]) -> ReadinessCheck:
    def check() -> None:
        client_factory().ping()

    return check
