"""The command API: commands in, normalized rows and the change log out."""

from __future__ import annotations

from fastapi import FastAPI

from command_api.modules.auth.router import router as auth_router
from command_api.modules.notifications.router import router as notifications_router
from command_api.modules.organizations.router import router as organizations_router
from command_api.modules.projects.router import router as projects_router
from command_api.modules.shared_reports.router import router as shared_reports_router
from command_api.modules.time_entries.router import router as time_entries_router
from command_api.modules.users.router import router as users_router
from command_api.modules.webhooks.router import router as webhooks_router
from shared.config import Settings, get_settings
from shared.db import write_engine
from shared.docs import install_docs
from shared.http import (
    configure_app,
    database_check,
    operations_router,
    redis_check,
    settle_heap,
)
from shared.logging import configure_logging
from shared.metrics import register_projection_metrics
from shared.openapi import install_openapi, operation_id
from shared.redis_client import redis_client

API_PREFIX = "/api/v1"
DOCUMENTED_TAGS = (
    "auth",
    "users",
    "organizations",
    "projects",
    "time entries",
    "notifications",
    "webhooks",
    "shared reports",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_format=settings.log_json)
    app = FastAPI(
        title="EvoTrack command API",
        version="1.0.0",
        description="Every state change of EvoTrack. Reads are served by the query API.",
        docs_url=None,  # /docs and /redoc: shared.docs, with no CDN
        redoc_url=None,
        openapi_tags=[{"name": tag} for tag in DOCUMENTED_TAGS],
        generate_unique_id_function=operation_id,
    )
    install_openapi(app)
    register_projection_metrics(write_engine, redis_client, lambda: get_settings().worker_queues)
    install_docs(app, settings, issues_tokens=True)
    configure_app(app, settings, app_name="command_api")
    app.include_router(
        operations_router(
            {"database": database_check(write_engine), "redis": redis_check(redis_client)}
        )
    )
    # Requests are matched against the routes in the order they are included, one by one
    # (~5 % of a time entry's CPU before this order): the busiest first. The documentation
    # keeps the order of `DOCUMENTED_TAGS`.
    for router, tag in (
        (time_entries_router, "time entries"),
        (auth_router, "auth"),
        (users_router, "users"),
        (organizations_router, "organizations"),
        (projects_router, "projects"),
        (notifications_router, "notifications"),
        (webhooks_router, "webhooks"),
        (shared_reports_router, "shared reports"),
    ):
        app.include_router(router, prefix=API_PREFIX, tags=[tag])
    settle_heap()
    return app
