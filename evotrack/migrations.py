"""`alembic upgrade head` from the command line, wherever the package is installed."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import make_url

import migrations

log = logging.getLogger("evotrack.migrate")

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def find_alembic_ini() -> Path | None:
    """alembic.ini beside the source tree (editable install), else in the working directory."""
    for candidate in (_SOURCE_ROOT / "alembic.ini", Path.cwd() / "alembic.ini"):
        if candidate.is_file():
            return candidate
    return None


def alembic_config(database_url: str) -> Config:
    ini = find_alembic_ini()
    config = Config(str(ini)) if ini else Config()
    if ini is None:
        # An installed wheel carries the migrations package but not alembic.ini.
        config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # configparser interpolates `%`: a percent-encoded password must be escaped.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and banners."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown without its credentials part
        return url.rsplit("@", 1)[-1]


def upgrade_to_head(database_url: str) -> None:
    log.info("applying migrations to %s", redacted(database_url))
    command.upgrade(alembic_config(database_url), "head")
