"""Where the benchmarks run: the servers of DATABASE_URL / REDIS_URL when set, else the
embedded PostgreSQL and Redis in `.evotrack/bench/` (a cluster of their own, so a
benchmark's long transactions never hold back another database's projections).

The data always go to a database of their own, `evotrack_bench`, recreated and migrated
by every run that generates data: the database named in DATABASE_URL is never touched.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from sqlalchemy import make_url

from bench.generate import plain_url
from evotrack.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".evotrack" / "bench"
BENCH_DATABASE = "evotrack_bench"


# The embedded cluster is the benchmark's own: configured as a DBA would configure a
# server on this machine (a quarter of the RAM for shared buffers, at most 4 GB; SSD costs)
# instead of PostgreSQL's toy defaults (shared_buffers 128 MB would make a 10-million-entry
# load evict pages from the start). A server given with DATABASE_URL is measured as it
# is; the results list the settings either way.
def embedded_settings(ram_bytes: int) -> dict[str, str]:
    mb = ram_bytes // 2**20
    return {
        "shared_buffers": f"{min(4096, mb // 4)}MB",
        "effective_cache_size": f"{mb // 2}MB",
        "maintenance_work_mem": f"{min(1024, max(64, mb // 16))}MB",
        "work_mem": "16MB",
        "max_wal_size": "8GB",
        "checkpoint_timeout": "15min",
        "wal_buffers": "16MB",
        "random_page_cost": "1.1",
    }


@dataclass(frozen=True)
class Services:
    server_url: str  # a database on the server, for CREATE DATABASE
    database_url: str  # the benchmark's own database
    redis_url: str
    embedded: bool


def database_on(server_url: str, name: str) -> str:
    url = make_url(plain_url(server_url)).set(database=name)
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def services() -> Iterator[Services]:
    """The servers to run on, started (and stopped afterwards) when embedded."""
    from evotrack.embedded import EmbeddedRedis

    server_url = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    postgres = None if server_url else tuned(EmbeddedPostgres(DATA_DIR / "pg").start())
    redis = None if redis_url else EmbeddedRedis(DATA_DIR / "redis", persist=False).start()
    try:
        server = server_url or (postgres.url("postgres") if postgres else "")
        yield Services(
            server_url=server,
            database_url=database_on(server, BENCH_DATABASE),
            redis_url=redis_url or (redis.url if redis else ""),
            embedded=postgres is not None,
        )
    finally:
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


def tuned(postgres: EmbeddedPostgres) -> EmbeddedPostgres:
    """Apply embedded_settings() (kept in the cluster's postgresql.auto.conf); restart when a
    setting needs it."""
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
        for name, value in embedded_settings(psutil.virtual_memory().total).items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), value))
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)
        row = conn.execute("SELECT count(*) FROM pg_settings WHERE pending_restart").fetchone()
    if row and row[0]:
        postgres.stop()
        postgres.start()
    return postgres


def recreate_database(found: Services) -> None:
    """Drop and create the benchmark's database, then apply the migrations."""
    from evotrack.migrations import upgrade_to_head

    with psycopg.connect(plain_url(found.server_url), autocommit=True) as conn:
        name = sql.Identifier(BENCH_DATABASE)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    upgrade_to_head(found.database_url)


def server_facts(database_url: str) -> dict[str, str]:
    """The PostgreSQL version and the settings that matter for these figures."""
    names = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size")
    with psycopg.connect(plain_url(database_url)) as conn:
        facts: dict[str, str] = {}
        for name in ("server_version", *names):
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            facts["version" if name == "server_version" else name] = str(row[0]) if row else "?"
    return facts
