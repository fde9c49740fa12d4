"""`evotrack reset` (`make reset`): start again from empty embedded servers.

Deletes what `evotrack run` embeds in its data directory, the PostgreSQL cluster and the
Redis files, and nothing else: the directory also holds the tests' and the benchmarks'
own servers. It takes the run's lock, so it refuses while a run uses the directory and no
run can start halfway through. Servers named by DATABASE_URL / REDIS_URL are not touched.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from evotrack.embedded import EmbeddedPostgres
from evotrack.errors import CliError
from evotrack.instance import STATE_FILE, data_dir_lock, running_state
from shared.config import Settings

EMBEDDED_DATA = ("pg", "redis", STATE_FILE)


def reset_command(_: Settings, args: argparse.Namespace) -> int:
    """Delete the embedded servers' data of `--data-dir`, unless a run is using it."""
    data_dir: Path = args.data_dir.resolve()
    if not any((data_dir / name).exists() for name in EMBEDDED_DATA):
        print(f"nothing to reset in {data_dir}")
        return 0
    try:
        with data_dir_lock(data_dir):
            _stop_left_over_postgres(data_dir / "pg")
            for name in EMBEDDED_DATA:
                _remove(data_dir / name)
    except BlockingIOError:
        raise CliError(refusal(data_dir)) from None
    print(f"deleted the embedded PostgreSQL and Redis data in {data_dir}:")
    print("the next `make run` starts with empty databases")
    return 0


def refusal(data_dir: Path) -> str:
    state, _ = running_state(data_dir)
    pid = f" (pid {state.pid})" if state else ""
    return f"an `evotrack run`{pid} is using {data_dir}: stop it first (Ctrl-C), then reset"


def _stop_left_over_postgres(pg_dir: Path) -> None:
    # A run killed with SIGKILL can leave its PostgreSQL running on the files to delete.
    if (pg_dir / "postmaster.pid").exists():
        EmbeddedPostgres(pg_dir).start().stop()


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
