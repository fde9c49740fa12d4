"""/docs and /redoc of both APIs in a real headless browser (Debian's chromium, driven by
Playwright) that may reach nothing but this machine: the pages render the operations from
the assets installed with the project, and Authorize in /docs signs in with email and
password, across origins from the query API's page.

Without /usr/bin/chromium these tests skip, unless EVOTRACK_REQUIRE_BROWSER=1 (CI), when
they fail. Each page's screenshot is left in the test's tmp_path.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector, LiveServer
from tests.factories import UserHandle, make_user

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# ReDoc's "API docs by Redocly" logo comes from its CDN: the Content-Security-Policy
# refuses it before any request is made. Every other violation would be a broken page.
TOLERATED_VIOLATION = re.compile(r"^Loading the image 'https://cdn\.redoc\.ly/")
WAIT_MS = 60_000  # bounds a failure only: a loaded machine may be slow to render

# An operation each document must show, by its path.
OPERATIONS = {"command": "/api/v1/auth/token", "query": "/api/v1/me"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("EVOTRACK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EVOTRACK_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def query_docs_server(command_server: LiveServer) -> Iterator[LiveServer]:
    """A query API whose /docs signs in at the test's command API (another origin)."""
    from query_api.main import create_app
    from shared.config import Settings

    with LiveServer(create_app(Settings(command_api_url=command_server.url))) as server:
        yield server


@pytest.fixture
def servers(command_server: LiveServer, query_docs_server: LiveServer) -> dict[str, LiveServer]:
    return {"command": command_server, "query": query_docs_server}


@dataclass
class OfflinePage:
    """A browser page whose requests off this machine are refused (and recorded), and
    whose console errors are recorded."""

    page: Page
    refused: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort("internetdisconnected")

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def csp_violations(self) -> list[str]:
        return [
            text
            for text in self.console_errors
            if "Content Security Policy" in text and not TOLERATED_VIOLATION.match(text)
        ]


@pytest.fixture
def offline(browser: Browser) -> Iterator[OfflinePage]:
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    offline = OfflinePage(context.new_page())
    context.route("**/*", offline.route)
    offline.page.on("console", offline.on_console)
    yield offline
    context.close()


def operation_shown(page: Page, page_path: str, operation_path: str) -> None:
    """Wait until the page shows the operation at `operation_path`."""
    if page_path == "/docs":
        shown = page.locator(f'.opblock-summary-path[data-path="{operation_path}"]')
    else:  # ReDoc: the method badge, then the path
        exact = re.compile(f"^{re.escape(operation_path)}$")
        shown = page.locator(".http-verb + span").filter(has_text=exact).first
    expect(shown).to_be_visible(timeout=WAIT_MS)


@pytest.mark.parametrize("page_path", ["/docs", "/redoc"])
@pytest.mark.parametrize("app", ["command", "query"])
def test_the_docs_pages_render_their_operations_with_no_network(
    servers: dict[str, LiveServer], offline: OfflinePage, tmp_path: Path, app: str, page_path: str
) -> None:
    response = offline.page.goto(servers[app].url + page_path)
    assert response is not None
    assert response.status == 200
    try:
        operation_shown(offline.page, page_path, OPERATIONS[app])
    finally:
        offline.page.screenshot(path=tmp_path / f"{app}{page_path.replace('/', '-')}.png")
    assert offline.refused == []
    assert offline.csp_violations() == []


def sign_in(page: Page, user: UserHandle) -> None:
    """Authorize in Swagger UI with the OAuth2 password flow, until it shows signed in."""
    page.get_by_role("button", name="Authorize").first.click()
    page.locator("#oauth_username").fill(user.email)
    page.locator("#oauth_password").fill(user.password)
    page.get_by_role("button", name="Apply given OAuth2 credentials").click()
    signed_in = page.get_by_role("button", name="Remove authorization")
    error = page.locator(".auth-container .errors")
    expect(signed_in.or_(error)).to_be_visible(timeout=WAIT_MS)
    assert not error.is_visible(), error.inner_text()
    page.locator(".auth-container .btn-done").last.click()


@pytest.mark.parametrize("app", ["command", "query"])
def test_authorize_signs_in_with_email_and_password(
    servers: dict[str, LiveServer], offline: OfflinePage, db: Engine, app: str
) -> None:
    user = make_user(db)
    offline.page.goto(servers[app].url + "/docs")
    operation_shown(offline.page, "/docs", OPERATIONS[app])
    sign_in(offline.page, user)
    assert offline.refused == []
    assert offline.csp_violations() == []


def read_side_knows(query_server: LiveServer, user: UserHandle) -> None:
    """Wait until the query API answers for `user` (the projector adds them)."""
    deadline = time.monotonic() + 60  # bounds a failure only
    url = f"{query_server.url}/api/v1/me"
    while httpx.get(url, headers=user.headers, timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "the read side never saw the user"
        time.sleep(0.05)


def test_try_it_out_on_the_query_api_with_the_signed_in_token(
    query_docs_server: LiveServer,
    offline: OfflinePage,
    db: Engine,
    projector_running: BackgroundProjector,
    tmp_path: Path,
) -> None:
    user = make_user(db)
    read_side_knows(query_docs_server, user)
    page = offline.page
    page.goto(query_docs_server.url + "/docs")
    operation_shown(page, "/docs", "/api/v1/me")
    sign_in(page, user)
    operation = page.locator(".opblock", has=page.locator('[data-path="/api/v1/me"]'))
    operation.locator(".opblock-summary-control").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table .response")
    expect(answer.locator(".response-col_status")).to_have_text("200", timeout=WAIT_MS)
    expect(answer.locator(".response-col_description")).to_contain_text(user.email)
    operation.screenshot(path=tmp_path / "query-try-it-out.png")
    assert offline.refused == []


# --- Without a browser: what the pages rely on ------------------------------------------


def test_only_the_token_endpoint_answers_another_origin(command_server: LiveServer) -> None:
    origin = "http://127.0.0.1:1"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    token_url = f"{command_server.url}/api/v1/auth/token"
    asked = httpx.options(token_url, headers=preflight)
    assert asked.status_code == 204
    assert asked.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-credentials" not in asked.headers
    refused = httpx.post(token_url, data={"username": "nobody@example.com", "password": "x"})
    assert "access-control-allow-origin" not in refused.headers  # no Origin, no CORS
    answered = httpx.post(
        token_url, data={"username": "x@example.com", "password": "x"}, headers={"Origin": origin}
    )
    assert answered.status_code == 401
    assert answered.headers["access-control-allow-origin"] == origin  # the page reads why
    other = httpx.options(f"{command_server.url}/api/v1/organizations", headers=preflight)
    assert "access-control-allow-origin" not in other.headers


def test_production_serves_no_docs_pages(environment: None) -> None:
    from command_api.main import create_app
    from shared.config import Settings

    settings = Settings(environment="production")
    with LiveServer(create_app(settings)) as server:
        for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets/swagger-ui.css"):
            assert httpx.get(server.url + path).status_code == 404, path
        policy = httpx.get(server.url + "/health").headers["content-security-policy"]
        assert policy.startswith("default-src 'none'")
