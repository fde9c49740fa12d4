"""Process settings: one pydantic-settings object per process, read from the environment."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_api_workers() -> int:
    """Processes per API when API_WORKERS is not set: the machine's cores, at most 4."""
    return min(os.cpu_count() or 1, 4)


DEFAULT_SECRET_KEY = "change-me-in-production-this-is-not-a-secret"
MIN_PRODUCTION_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = ""
    query_database_url: str = ""
    redis_url: str = ""
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    ops_token: SecretStr | None = None

    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "evotrack"
    jwt_audience: str = "evotrack-api"
    access_token_ttl_seconds: int = Field(default=15 * 60, gt=0)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)

    # argon2 cost; production keeps passlib's defaults, tests lower them.
    argon2_memory_cost_kib: int = Field(default=65536, ge=8)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_parallelism: int = Field(default=4, ge=1)

    cors_origins: list[str] = Field(default_factory=list)
    # Hosts webhooks may reach although they resolve to a private address (production).
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    # Where a browser reaches the command API: the query API's /docs signs in at its
    # /api/v1/auth/token (Authorize), and the pages may connect there (shared.docs).
    command_api_url: str = "http://127.0.0.1:8000"

    # Rate limits for login, token and refresh: attempts per window.
    auth_rate_limit_per_ip: int = Field(default=30, ge=1)
    auth_rate_limit_per_account: int = Field(default=10, ge=1)
    auth_rate_limit_window_seconds: int = Field(default=60, ge=1)
    # Reads of shared reports (GET /public/reports/{token}) per client address and minute.
    public_report_rate_limit_per_ip: int = Field(default=60, ge=1)

    idempotency_ttl_seconds: int = Field(default=24 * 3600, gt=0)
    max_request_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    redis_timeout_seconds: float = Field(default=0.5, gt=0)

    # Processes per API under `evotrack run` (uvicorn --workers): one Python process is
    # bound by the GIL to one core. Default: the machine's cores, at most 4.
    api_workers: int = Field(default_factory=lambda: default_api_workers(), ge=1, le=64)

    wakeup_queue: str = "projections"
    # Webhook deliveries: their own queue and worker role, so a slow receiver never holds
    # back projections or notifications (`evotrack run` starts WEBHOOK_WORKERS of them).
    webhooks_queue: str = "webhooks"
    webhook_workers: int = Field(default=2, ge=1, le=64)
    # How long a delivered or failed webhook delivery stays in the log (and its body).
    webhook_log_retention_days: int = Field(default=30, ge=1)
    change_log_retention_days: int = Field(default=7, ge=0)
    # How long delta sync keeps a tombstone: a client offline longer starts over (`reset`).
    sync_retention_days: int = Field(default=30, ge=0)
    consistency_wait_seconds: float = Field(default=5.0, ge=0)

    # Notifications: scheduled jobs run from this queue (every worker listens on it after
    # the wake-up queue); emails go through SMTP when SMTP_HOST is set, else to the log.
    # How long a timer may run is each organization's setting.
    notifications_queue: str = "notifications"
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_from: str = "EvoTrack <no-reply@evotrack.invalid>"
    smtp_user: str = ""
    smtp_password: SecretStr | None = None

    log_level: str = "INFO"
    log_json: bool = True

    @property
    def worker_queues(self) -> tuple[str, ...]:
        """The RQ queues the workers take jobs from (their depth is in /metrics)."""
        return (self.wakeup_queue, self.notifications_queue, self.webhooks_queue)

    @model_validator(mode="after")
    def _production_needs_a_real_secret(self) -> Settings:
        if self.environment == "production":
            secret = self.secret_key.get_secret_value()
            if secret == DEFAULT_SECRET_KEY or len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
                raise ValueError(
                    "SECRET_KEY must be set to a random value of at least "
                    f"{MIN_PRODUCTION_SECRET_LENGTH} characters when ENVIRONMENT=production"
                )
        return self

    @field_validator("command_api_url")
    @classmethod
    def _an_http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("COMMAND_API_URL must be an http(s) URL, e.g. http://127.0.0.1:8000")
        return url.rstrip("/")

    @property
    def read_database_url(self) -> str:
        return self.query_database_url or self.database_url

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
