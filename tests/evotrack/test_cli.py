"""`evotrack migrate` and the settings check every command makes before it starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory

from evotrack.embedded import free_port
from evotrack.migrations import alembic_config
from projections.registry import PROJECTIONS

SERVER_URLS = {"DATABASE_URL", "QUERY_DATABASE_URL", "REDIS_URL"}


def evotrack(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `evotrack` script (its console entry point) in a clean environment."""
    script = Path(sys.executable).parent / "evotrack"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "evotrack.cli"]
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in SERVER_URLS | {"SECRET_KEY", "ENVIRONMENT"} and not k.startswith("TEST_")
    }
    return subprocess.run(
        [*command, *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_clear_refusal(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    assert any(line.startswith("evotrack: ") for line in result.stderr.splitlines())
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


@pytest.mark.parametrize("command", [["migrate"], ["run", "--data-dir", "data"], ["worker"]])
def test_production_refuses_the_default_secret(tmp_path: Path, command: list[str]) -> None:
    result = evotrack(
        command,
        tmp_path,
        ENVIRONMENT="production",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
        REDIS_URL="redis://127.0.0.1:1/0",
    )
    assert_clear_refusal(result, "invalid settings", "SECRET_KEY", "32 characters")
    assert result.stderr.startswith("evotrack: invalid settings:")
    assert result.returncode == 2
    assert not (tmp_path / "data").exists()  # refused before starting anything


def test_production_refuses_a_short_secret(tmp_path: Path) -> None:
    result = evotrack(
        ["migrate"],
        tmp_path,
        ENVIRONMENT="production",
        SECRET_KEY="too-short",
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
    )
    assert_clear_refusal(result, "SECRET_KEY")


def test_an_invalid_setting_is_named_by_its_variable(tmp_path: Path) -> None:
    result = evotrack(["migrate"], tmp_path, ACCESS_TOKEN_TTL_SECONDS="0")
    assert_clear_refusal(result, "ACCESS_TOKEN_TTL_SECONDS")


def test_migrate_needs_a_database_url(tmp_path: Path) -> None:
    assert_clear_refusal(
        evotrack(["migrate"], tmp_path), "no DATABASE_URL and no running `make run` found"
    )


def test_migrate_reports_an_unreachable_database(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    result = evotrack(["migrate"], tmp_path, DATABASE_URL=url)
    assert_clear_refusal(result, "cannot reach the database")


def test_migrate_brings_an_empty_database_to_head_twice_over(
    tmp_path: Path, empty_database: str
) -> None:
    head = ScriptDirectory.from_config(alembic_config(empty_database)).get_current_head()
    for _ in range(2):  # the second run finds nothing to do
        result = evotrack(["migrate"], tmp_path, DATABASE_URL=empty_database)
        assert result.returncode == 0, result.stderr
        assert "is at the newest migration" in result.stdout
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
        assert conn.execute("SELECT to_regclass('time_entries')").fetchone() == ("time_entries",)
        # Every projection has its checkpoint before any worker ran: lag shows from the start.
        names = {row[0] for row in conn.execute("SELECT name FROM projection_checkpoints")}
        assert names == {projector.name for projector in PROJECTIONS}


def test_run_refuses_a_port_in_use(tmp_path: Path, redis_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = evotrack(
            ["run", "--command-port", str(port), "--data-dir", "data"],
            tmp_path,
            DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
            REDIS_URL=redis_url,
        )
    assert_clear_refusal(result, f"port {port}", "--command-port")
    assert not (tmp_path / "data").exists()
