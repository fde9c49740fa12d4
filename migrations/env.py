"""Alembic environment: one linear history for the write and the read tables.

Logging is left as it is when our code runs the migrations (`evotrack migrate`, `evotrack
run`, the tests): it is theirs. Only the `alembic` command line gets it set up here, in the
LOG_JSON format like every other log line.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import command_api.models  # noqa: F401  (registers the normalized tables)
import projections.models  # noqa: F401  (registers the projection tables)
import shared.checkpoints  # noqa: F401  (registers the projections' bookkeeping)
from shared.config import get_settings
from shared.db import Base, to_sqlalchemy_url
from shared.logging import configure_logging

target_metadata = Base.metadata


def _url() -> str:
    return context.config.get_main_option("sqlalchemy.url") or get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = context.config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(to_sqlalchemy_url(_url()), poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def _configure_logging_for_the_alembic_command() -> None:
    if context.config.cmd_opts is not None:  # not set when our code calls Alembic's API
        settings = get_settings()
        configure_logging(settings.log_level, json_format=settings.log_json)


_configure_logging_for_the_alembic_command()

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
