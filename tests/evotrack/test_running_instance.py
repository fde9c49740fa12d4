"""The operator commands find the embedded servers of a running `make run` by themselves
(through the run's state file), ignore a state file a dead run left behind, let
DATABASE_URL / REDIS_URL win, and `evotrack reset` deletes the data only while no run
uses it. `make run` takes the ports."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from evotrack.embedded import EmbeddedPostgres, remove_tree
from evotrack.instance import LOCK_FILE, STATE_FILE, RunState
from projections.registry import PROJECTIONS
from tests.evotrack.test_cli import assert_clear_refusal, evotrack
from tests.evotrack.test_run import kill_if_running, postmaster_pid, start_run, wait_until_ready
from tests.services import ROOT

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A working directory whose `.evotrack` is the data directory, as the repository's is
    for `make run`. Under the repository rather than pytest's tmp_path: the embedded
    PostgreSQL runs as another user when the tests run as root, and must reach it."""
    path = ROOT / ".evotrack" / f"test-instance-{uuid.uuid4().hex[:12]}"
    (path / ".evotrack").mkdir(parents=True)
    yield path
    pg_dir = path / ".evotrack" / "pg"
    if postmaster_pid(pg_dir) is not None:  # a failed test left the server up
        EmbeddedPostgres(pg_dir).start().stop()
    remove_tree(path)


def write_state(data_dir: Path, pid: int, database_url: str) -> None:
    state = RunState(pid, database_url, None, "http://127.0.0.1:1", "http://127.0.0.1:2")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / STATE_FILE).write_text(json.dumps(asdict(state)))


def held_lock(data_dir: Path) -> int:
    """Take the data directory's lock as a running `evotrack run` holds it."""
    fd = os.open(data_dir / LOCK_FILE, os.O_CREAT | os.O_WRONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_the_operator_commands_find_a_running_make_run(workdir: Path) -> None:
    data_dir = workdir / ".evotrack"
    run = start_run(data_dir, workdir / "run.log")
    try:
        wait_until_ready(run)
        state = json.loads((data_dir / STATE_FILE).read_text())
        assert state["pid"] == run.process.pid
        found = f"of the `evotrack run` of {data_dir} (pid {run.process.pid})"

        status = evotrack(["projections", "status"], workdir)
        assert status.returncode == 0, status.stderr
        assert f"DATABASE_URL is not set: using the PostgreSQL {found}" in status.stderr
        assert [line.split()[0] for line in status.stdout.splitlines()[1:]] == [
            p.name for p in PROJECTIONS
        ]
        as_json = evotrack(["projections", "status", "--json"], workdir)
        assert len(json.loads(as_json.stdout)) == len(PROJECTIONS)  # stdout stays JSON

        migrate = evotrack(["migrate"], workdir)
        assert migrate.returncode == 0, migrate.stderr
        assert "is at the newest migration" in migrate.stdout

        worker = evotrack(["worker", "--burst", "--role", "notifications"], workdir)
        assert worker.returncode == 0, worker.stderr
        assert f"REDIS_URL is not set: using the Redis {found}" in worker.stderr

        explicit = evotrack(["migrate"], workdir, DATABASE_URL=UNREACHABLE)
        assert_clear_refusal(explicit, "cannot reach the database")
        assert "using the PostgreSQL" not in explicit.stderr

        refused = evotrack(["reset"], workdir)
        assert_clear_refusal(refused, f"pid {run.process.pid}", "is using", "stop it first")
        assert (data_dir / "pg" / "PG_VERSION").exists()

        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(60) == 0, run.output()
    finally:
        kill_if_running(run)

    assert not (data_dir / STATE_FILE).exists()
    after = evotrack(["projections", "status"], workdir)
    assert_clear_refusal(after, "no DATABASE_URL and no running `make run` found in")

    reset = evotrack(["reset"], workdir)
    assert reset.returncode == 0, reset.stderr
    assert not (data_dir / "pg").exists()
    assert not (data_dir / "redis").exists()
    assert "nothing to reset" in evotrack(["reset"], workdir).stdout


def ended_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


@pytest.mark.parametrize("pid", ["ended", "alive but not a run"])
def test_a_state_file_left_over_from_a_run_is_ignored(tmp_path: Path, pid: str) -> None:
    # A dead pid, or a live one that holds no lock: the pid of a killed run, reused.
    stale_pid = ended_pid() if pid == "ended" else os.getpid()
    write_state(tmp_path / ".evotrack", stale_pid, UNREACHABLE)
    result = evotrack(["projections", "status"], tmp_path)
    assert_clear_refusal(
        result,
        f"no DATABASE_URL and no running `make run` found in {tmp_path / '.evotrack'}",
        "set DATABASE_URL",
        f"left over from a run that has ended, pid {stale_pid}",
    )


def test_nothing_running_is_said_plainly(tmp_path: Path) -> None:
    result = evotrack(["worker", "--burst"], tmp_path)
    assert_clear_refusal(
        result, "no DATABASE_URL / REDIS_URL and no running `make run` found", "make run"
    )


def test_a_set_database_url_wins_over_the_running_make_run(
    tmp_path: Path, empty_database: str
) -> None:
    data_dir = tmp_path / ".evotrack"
    write_state(data_dir, os.getpid(), empty_database)
    fd = held_lock(data_dir)
    try:
        found = evotrack(["migrate"], tmp_path)
        assert found.returncode == 0, found.stderr
        assert f"using the PostgreSQL of the `evotrack run` of {data_dir}" in found.stderr

        explicit = evotrack(["migrate"], tmp_path, DATABASE_URL=UNREACHABLE)
        assert_clear_refusal(explicit, "cannot reach the database")

        elsewhere = evotrack(["migrate", "--data-dir", str(tmp_path / "other")], tmp_path)
        assert_clear_refusal(elsewhere, f"no running `make run` found in {tmp_path / 'other'}")
    finally:
        os.close(fd)


def test_reset_refuses_while_the_data_directory_is_in_use(tmp_path: Path) -> None:
    data_dir = tmp_path / ".evotrack"
    (data_dir / "redis").mkdir(parents=True)
    fd = held_lock(data_dir)
    try:
        assert_clear_refusal(evotrack(["reset"], tmp_path), "is using", "stop it first")
        assert (data_dir / "redis").exists()
    finally:
        os.close(fd)
    (data_dir / "bench").mkdir()  # the benchmarks' and the tests' own servers stay
    assert evotrack(["reset"], tmp_path).returncode == 0
    assert sorted(p.name for p in data_dir.iterdir()) == ["bench", LOCK_FILE]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_run_takes_the_ports() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "run", "COMMAND_PORT=8100", "QUERY_PORT=8101"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "evotrack run --command-port 8100 --query-port 8101" in dry_run.stdout
