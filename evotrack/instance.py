"""The `evotrack run` of a data directory, as the operator commands find it.

While `evotrack run` embeds a server it holds the data directory's lock and keeps a state
file there, `run.json`: its pid, the URLs of the servers it embedded and of its APIs. The
operator commands (`migrate`, `projections …`, `worker`) read it when `DATABASE_URL` /
`REDIS_URL` are not set, so they reach the servers of a running `make run` unconfigured.

A run killed with SIGKILL leaves its file behind. The file counts only while the lock is
held, and the lock dies with the process that took it: a left-over file, even one whose
pid now belongs to another process, is recognised as stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from evotrack.embedded import process_exists

STATE_FILE = "run.json"
LOCK_FILE = "run.lock"


@dataclass(frozen=True)
class RunState:
    """What a running `evotrack run` tells the operator commands. A URL is None when the
    run uses a server of its own configuration rather than an embedded one."""

    pid: int
    database_url: str | None
    redis_url: str | None
    command_url: str
    query_url: str


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory for one process: `evotrack run` (two Redis servers must never
    share a file) or `evotrack reset`. Raises BlockingIOError when another holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


def lock_is_held(data_dir: Path) -> bool:
    """Whether a process holds the data directory's lock now (a shared lock is refused)."""
    try:
        with open(data_dir / LOCK_FILE) as handle:
            return _locked_elsewhere(handle.fileno())
    except FileNotFoundError:
        return False


def _locked_elsewhere(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


@contextlib.contextmanager
def published(data_dir: Path, state: RunState) -> Iterator[Path]:
    """Write the state file for as long as the block runs (the caller holds the lock)."""
    path = data_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(state), indent=2) + "\n")
    os.replace(temporary, path)  # a reader never sees half a file
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def read_state(data_dir: Path) -> RunState | None:
    """The state file's content, None when there is none or it cannot be read."""
    try:
        data = json.loads((data_dir / STATE_FILE).read_text())
        return RunState(**data)
    except (OSError, ValueError, TypeError):
        return None


def running_state(data_dir: Path) -> tuple[RunState | None, RunState | None]:
    """(the state of the run using `data_dir`, a stale state file left there): at most one
    of them is set."""
    state = read_state(data_dir)
    if state is None:
        return None, None
    if lock_is_held(data_dir) and process_exists(state.pid):
        return state, None
    return None, state
