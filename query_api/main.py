"""The query API: paginated reads, reports and dashboards from the projections only."""

from __future__ import annotations

from fastapi import FastAPI

from query_api.modules.catalog.router import router as catalog_router
from query_api.modules.dashboard.router import router as dashboard_router
from query_api.modules.entries.router import router as entries_router
from query_api.modules.notifications.router import router as notifications_router
from query_api.modules.reports.router import router as reports_router
from query_api.modules.shared_reports.router import router as shared_reports_router
from query_api.modules.sync.router import router as sync_router
from query_api.modules.system.router import router as system_router
from query_api.modules.webhooks.metrics import DeliveryCollector
from query_api.modules.webhooks.router import router as webhooks_router
from shared.config import Settings, get_settings
from shared.db import read_engine
from shared.docs import install_docs
from shared.http import (
    configure_app,
    database_check,
    operations_router,
    redis_check,
    settle_heap,
)
from shared.logging import configure_logging
from shared.metrics import (
    register_collector,
    register_projection_metrics,
    register_replica_metrics,
)
from shared.openapi import install_openapi, operation_id
from shared.redis_client import redis_client

API_PREFIX = "/api/v1"
DOCUMENTED_TAGS = (
    "catalog",
    "system",
    "entries",
    "reports",
    "dashboard",
    "notifications",
    "sync",
    "webhooks",
    "shared reports",
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_format=settings.log_json)
    app = FastAPI(
        title="EvoTrack query API",
        version="1.0.0",
        description="Every read of EvoTrack, served from the projections.",
        docs_url=None,  # /docs and /redoc: shared.docs, with no CDN
        redoc_url=None,
        openapi_tags=[{"name": tag} for tag in DOCUMENTED_TAGS],
        generate_unique_id_function=operation_id,
    )
    install_openapi(app)
    register_projection_metrics(read_engine, redis_client, lambda: get_settings().worker_queues)
    register_replica_metrics(read_engine)  # QUERY_DATABASE_URL may be a streaming replica
    register_collector("webhooks", lambda: DeliveryCollector(read_engine))
    install_docs(app, settings, issues_tokens=False)
    configure_app(app, settings, app_name="query_api")
    app.include_router(
        operations_router(
            {"database": database_check(read_engine), "redis": redis_check(redis_client)}
        )
    )
    # Requests are matched against the routes in the order they are included, one by one:
    # the busiest first. The documentation keeps the order of `DOCUMENTED_TAGS`.
    for router in (
        entries_router,
        reports_router,
        dashboard_router,
        catalog_router,
        notifications_router,
        sync_router,
        webhooks_router,
        shared_reports_router,
        system_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    settle_heap()
    return app
