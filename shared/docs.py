"""The interactive docs of both APIs (/docs: Swagger UI, /redoc: ReDoc), served without the
internet: their scripts and styles come from the `fastapi-offline` package installed with
the project, never from a CDN, so they work on a self-hosted or air-gapped machine.

Authorize in /docs signs in with email and password: the OpenAPI document of each app
offers the OAuth2 password flow on the command API's POST /api/v1/auth/token as the
alternative to the bearer scheme wherever that one is required. Both end as the same
`Authorization: Bearer` header, so authentication itself is unchanged.

The pages run no inline script but the two below, which the Content-Security-Policy names
by hash (`content_security_policy`); outside production only, as before.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import Settings

TOKEN_PATH = "/api/v1/auth/token"
BEARER_SCHEME = "HTTPBearer"  # FastAPI's name for our `HTTPBearer` dependencies
PASSWORD_SCHEME = "EmailPassword"
ASSETS_PATH = "/docs/assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
# fastapi-offline's static folder: Swagger UI's bundle and CSS, ReDoc's standalone bundle.
ASSETS_PACKAGE = ("fastapi_offline", "static")

_SWAGGER_INIT = f"""
window.ui = SwaggerUIBundle({{
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  oauth2RedirectUrl: window.location.origin + "{OAUTH2_REDIRECT_PATH}",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}});
"""

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{assets}/favicon.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script>{init}</script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{assets}/favicon.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<noscript>ReDoc needs JavaScript.</noscript>
<redoc spec-url="/openapi.json"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""

_OAUTH2_REDIRECT_PAGE = bytes(get_swagger_ui_oauth2_redirect_html().body).decode()


def _inline_scripts(page: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)


def _csp_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


# What a browser hashes is the exact text between <script> and </script>.
_SCRIPT_HASHES = " ".join(
    _csp_hash(script) for script in [_SWAGGER_INIT, *_inline_scripts(_OAUTH2_REDIRECT_PAGE)]
)


def content_security_policy(*, production: bool, command_api_url: str = "") -> str:
    """The Content-Security-Policy of every response.

    Outside production it fits the docs pages: scripts of our origin plus the two inline
    ones by hash, ReDoc's and Swagger UI's inline styles, `data:` images and ReDoc's `blob:`
    search worker; requests to our origin and to the command API (the query API's /docs
    signs in there). A JSON response gives a browser nothing to run either way. Production
    serves no pages, so nothing at all is allowed there."""
    if production:
        return "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    connect = " ".join(["'self'", *filter(None, [_origin(command_api_url)])])
    return (
        f"default-src 'self'; script-src 'self' {_SCRIPT_HASHES}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def install_docs(app: FastAPI, settings: Settings, *, issues_tokens: bool) -> None:
    """Serve /docs, /docs/oauth2-redirect, /redoc and their assets (/docs/assets/…) on
    `app` outside production, and make its OpenAPI document offer signing in with email and
    password at this app's own token URL when it `issues_tokens` (the command API), else at
    the command API's (COMMAND_API_URL).

    The command API also answers the cross-origin sign-in of the query API's /docs
    (`TokenEndpointCors`) when CORS_ORIGINS is not set; when it is, CORS_ORIGINS decides,
    and must list the query API's origin for that."""
    token_url = TOKEN_PATH if issues_tokens else settings.command_api_url + TOKEN_PATH
    _offer_password_sign_in(app, token_url)
    if settings.is_production:
        return
    app.mount(ASSETS_PATH, _Assets(packages=[ASSETS_PACKAGE]), name="docs-assets")
    swagger = _SWAGGER_PAGE.format(
        title=html.escape(f"{app.title} - Swagger UI"), assets=ASSETS_PATH, init=_SWAGGER_INIT
    )
    redoc = _REDOC_PAGE.format(title=html.escape(f"{app.title} - ReDoc"), assets=ASSETS_PATH)
    _add_page(app, "/docs", swagger)
    _add_page(app, OAUTH2_REDIRECT_PATH, _OAUTH2_REDIRECT_PAGE)
    _add_page(app, "/redoc", redoc)
    if issues_tokens and not settings.cors_origins:
        app.add_middleware(TokenEndpointCors, path=TOKEN_PATH)


def _add_page(app: FastAPI, path: str, page: str) -> None:
    async def serve_page() -> HTMLResponse:
        return HTMLResponse(page)

    app.add_api_route(path, serve_page, methods=["GET"], include_in_schema=False)


def _offer_password_sign_in(app: FastAPI, token_url: str) -> None:
    """Add the password flow to `app.openapi()` as the alternative to the bearer scheme.

    In the document and not as a FastAPI dependency: a dependency runs on every request,
    and one that only read the header again cost each authenticated request ~100,000 more
    instructions (callgrind; a third of a trivial endpoint's), for nothing it needs."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()  # the same cached document on every call: changed once
        schemes = spec.setdefault("components", {}).setdefault("securitySchemes", {})
        if schemes.get(PASSWORD_SCHEME) != _password_scheme(token_url):
            schemes[PASSWORD_SCHEME] = _password_scheme(token_url)
            for operation in _operations(spec):
                security = operation.get("security", [])
                if {BEARER_SCHEME: []} in security and {PASSWORD_SCHEME: []} not in security:
                    security.append({PASSWORD_SCHEME: []})
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _password_scheme(token_url: str) -> dict[str, Any]:
    return {
        "type": "oauth2",
        "description": "Sign in with your email (as `username`) and password: the command "
        f"API's POST {TOKEN_PATH} answers an access token, sent as `Authorization: Bearer`.",
        "flows": {"password": {"tokenUrl": token_url, "scopes": {}}},
    }


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path_item in spec.get("paths", {}).values()
        for operation in path_item.values()
        if isinstance(operation, dict)
    ]


class _Assets(StaticFiles):
    """The package's files, revalidated by ETag on each visit (a 304 when unchanged):
    the `no-store` of API responses would download 2.8 MB every time."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


class TokenEndpointCors:
    """CORS for the token endpoint alone, from any origin: the query API's /docs (another
    port, so another origin) signs in there.

    Safe for any origin: the request carries the email and password in its body and no
    cookie (credentials are never allowed), so a page learns nothing it did not send, and
    the per-account rate limit bounds guessing exactly as without CORS."""

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(origin, headers)(scope, receive, send)
            return

        async def send_allowed(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["access-control-allow-origin"] = origin
                response_headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_allowed)


def _preflight(origin: str, request_headers: Headers) -> Response:
    return Response(
        status_code=204,
        headers={
            "access-control-allow-origin": origin,
            "access-control-allow-methods": "POST",
            "access-control-allow-headers": request_headers.get(
                "access-control-request-headers", ""
            ),
            "access-control-max-age": "600",
            "vary": "Origin",
        },
    )
