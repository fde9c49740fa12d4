"""The README cannot rot: its links and the paths it names exist in the repository, and
its first-minutes walkthrough runs, as written, against a running `evotrack run`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.evotrack.test_run import kill_if_running, start_run, wait_until_ready
from tests.services import ROOT, scratch_database

README = ROOT / "README.md"
DOCUMENTS = [README, ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
WALKTHROUGH_MARKER = "<!-- tests/test_readme.py runs this block"

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
BACKTICKED_PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)+/?)`")
EXTERNAL = re.compile(r"^[a-z][a-z+.-]*:")  # http:, https:, mailto:


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def relative_links(document: Path) -> list[str]:
    targets = LINK.findall(document.read_text())
    return [t for t in targets if not EXTERNAL.match(t) and not t.startswith("#")]


@pytest.mark.parametrize("document", DOCUMENTS, ids=relative)
def test_every_relative_link_is_a_file_of_the_repository(document: Path) -> None:
    broken = [
        target
        for target in relative_links(document)
        if not (document.parent / target.split("#", 1)[0]).resolve().exists()
    ]
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS[:2], ids=relative)
def test_every_path_the_readmes_name_exists(document: Path) -> None:
    named = BACKTICKED_PATH.findall(document.read_text())
    runtime = (".evotrack",)  # made by `make run`, not in a clone
    missing = [
        path
        for path in named
        if not path.startswith(runtime)
        and not (ROOT / path).exists()
        and not (document.parent / path).exists()
    ]
    assert missing == []


def test_the_readme_names_no_document_a_clone_lacks() -> None:
    # "API.md of the design docs" once sent readers to files only its authors had.
    names = set(re.findall(r"[\w./-]+\.md\b", README.read_text()))
    assert [n for n in names if not (ROOT / n).exists()] == []


def walkthrough() -> str:
    text = README.read_text()
    start = text.index("```sh\n", text.index(WALKTHROUGH_MARKER)) + len("```sh\n")
    return text[start : text.index("```", start)]


@pytest.fixture
def fresh_database() -> Iterator[str]:
    with scratch_database(f"evotrack_readme_{uuid.uuid4().hex[:10]}") as url:
        yield url


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough needs curl")
def test_the_walkthrough_runs_against_a_running_product(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> None:
    run = start_run(
        tmp_path / "data",
        tmp_path / "run.log",
        DATABASE_URL=fresh_database,
        REDIS_URL=redis_url,
        WAKEUP_QUEUE=f"test-readme-{uuid.uuid4().hex[:8]}",
        NOTIFICATIONS_QUEUE=f"test-readme-notify-{uuid.uuid4().hex[:8]}",
        # Other tests' requests count against 127.0.0.1 in the same Redis.
        AUTH_RATE_LIMIT_PER_IP="100000",
        ARGON2_MEMORY_COST_KIB="64",
        ARGON2_TIME_COST="1",
        ARGON2_PARALLELISM="1",
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    try:
        wait_until_ready(run)
        result = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + walkthrough()],
            cwd=scratch,
            env={
                "PATH": os.environ["PATH"],
                "TMPDIR": str(scratch),
                "COMMAND_API": run.url(run.command_port, "/api/v1"),
                "QUERY_API": run.url(run.query_port, "/api/v1"),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        kill_if_running(run)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{run.output()}"
    check_the_answers(result.stdout)
    assert list(scratch.iterdir()) == []  # it leaves no file behind


def check_the_answers(stdout: str) -> None:
    """Register, the entry's duration, the summary (JSON), the export (CSV), in order."""
    email, duration, rest = stdout.split("\n", 2)
    assert (email, duration) == ("ada@example.com", "5400")
    summary_text, csv_text = rest.rsplit("}\n", 1)
    summary = json.loads(summary_text + "}")["data"]
    assert summary["totals"] == {
        "seconds": 5400, "billable_seconds": 5400, "amount": 12000, "entries": 1,
    }  # fmt: skip
    assert [g["key"] for g in summary["groups"]] == ["2026-01-05"]
    assert csv_text.splitlines() == [
        '"day","seconds","billable_seconds","amount","entries"',
        '"2026-01-05",5400,5400,12000,1',
    ]
