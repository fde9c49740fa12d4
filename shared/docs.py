"""The interactive docs of both APIs (/docs: Swagger UI, /redoc: ReDoc), served without the
internet: their scripts and styles come from the `fastapi-offline` package installed with
the project, never from a CDN, so they work on a self-hosted or air-gapped machine.

Authorize in /docs signs in with email and password: `PASSWORD_FLOW` declares the OAuth2
password flow on the command API's POST /api/v1/auth/token beside the bearer scheme. Both
end as the same `Authorization: Bearer` header, so authentication itself is unchanged.

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
from fastapi.security import OAuth2PasswordBearer
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.config import Settings

TOKEN_PATH = "/api/v1/auth/token"
PASSWORD_SCHEME = "EmailPassword"
ASSETS_PATH = "/docs/assets"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
# fastapi-offline's static folder: Swagger UI's bundle and CSS, ReDoc's standalone bundle.
ASSETS_PACKAGE = ("fastapi_offline", "static")

PASSWORD_FLOW = OAuth2PasswordBearer(
    tokenUrl=TOKEN_PATH,  # the query API's document names the command API's (`install_docs`)
    scheme_name=PASSWORD_SCHEME,
    description="Sign in with your email (as `username`) and password: the command API's "
    f"POST {TOKEN_PATH} answers an access token, sent as `Authorization: Bearer`.",
    auto_error=False,  # only documents a way to get the bearer token; never refuses itself
)

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
    `app` outside production, and make its OpenAPI document name the token URL that
    Authorize signs in at: this app's own when it `issues_tokens` (the command API), else
    the command API's at COMMAND_API_URL.

    The command API also answers the cross-origin sign-in of the query API's /docs
    (`TokenEndpointCors`) when CORS_ORIGINS is not set; when it is, CORS_ORIGINS decides,
    and must list the query API's origin for that."""
    if not issues_tokens:
        _name_token_url(app, settings.command_api_url + TOKEN_PATH)
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


def _name_token_url(app: FastAPI, token_url: str) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        schemes = spec.get("components", {}).get("securitySchemes", {})
        if PASSWORD_SCHEME in schemes:
            schemes[PASSWORD_SCHEME]["flows"]["password"]["tokenUrl"] = token_url
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


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
