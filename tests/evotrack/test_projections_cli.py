"""`evotrack projections status | rebuild | verify | retry` on the test database, in-process."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from evotrack.cli import main
from evotrack.projections_cli import ProgressBar
from projections.registry import PROJECTIONS
from tests.factories import OrgHandle, make_org
from tests.projections.conftest import drain

NAMES = [p.name for p in PROJECTIONS]


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """The CLI configures the root logger; give pytest its handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def projected_org(api: httpx.Client, db: Engine) -> tuple[OrgHandle, str]:
    """An organization with one entry made through the command API, fully projected."""
    org = make_org(db, timezone="Europe/Berlin")
    response = api.post(
        org.path("/time-entries"),
        json={"start_at": "2026-05-04T08:00:00Z", "end_at": "2026-05-04T09:30:00Z"},
        headers=org.owner.headers,
    )
    assert response.status_code == 201, response.text
    drain(sessionmaker(bind=db))
    return org, str(response.json()["data"]["id"])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["projections", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_names_every_projection(
    environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["PROJECTION", "CHECKPOINT", "APPLIED"]
    assert [row.split()[0] for row in rows] == sorted(NAMES)
    assert all(re.fullmatch(r"\d+:\d+", row.split()[1]) for row in rows)

    code, out, _ = run(capsys, "status", "--json")
    assert code == 0
    statuses = json.loads(out)
    assert sorted(s["name"] for s in statuses) == sorted(NAMES)
    assert {"lag_changes", "lag_seconds", "dead_letters", "last_error"} <= set(statuses[0])


def test_verify_passes_then_reports_a_corrupted_row_and_a_rebuild_repairs_it(
    projected_org: tuple[OrgHandle, str], db: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    org, _ = projected_org
    code, out, _ = run(capsys, "verify", "--org", str(org.id))
    assert (code, out.splitlines()) == (0, [f"{name}: ok" for name in NAMES])

    with db.begin() as conn:
        corrupted = conn.execute(
            text("UPDATE proj_daily_totals SET seconds = seconds + 1 WHERE org_id = :o"),
            {"o": org.id},
        ).rowcount
    assert corrupted == 1
    code, out, _ = run(capsys, "verify", "entries", "--org", str(org.id))
    assert code == 1
    assert out.startswith("entries: DIFFERS\n")
    assert "  proj_daily_totals: 1 missing, 1 unexpected\n" in out
    assert "    missing    org_id=" in out
    assert "    unexpected org_id=" in out
    assert "5400" in out
    assert "5401" in out

    code, out, err = run(capsys, "rebuild", "entries")
    assert code == 0
    progress = err.splitlines()
    assert progress[0].startswith("rebuild entries [")
    assert progress[-1].startswith("rebuild entries [" + "#" * 24 + "]")
    assert any(" swap " in line for line in progress)
    assert "entries: rebuilt in " in out
    assert re.search(r"^proj_daily_totals\s+\d+$", out, re.MULTILINE)
    assert "entries: caught up" in out

    code, out, _ = run(capsys, "verify", "entries", "--org", str(org.id))
    assert (code, out) == (0, "entries: ok\n")


def test_rebuild_refuses_an_unknown_projection(
    environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "rebuild", "nope")
    assert code == 2
    assert out == ""
    assert err.startswith("evotrack: unknown projection 'nope' (known: ")


def test_retry_resolves_a_dead_letter(
    projected_org: tuple[OrgHandle, str], db: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    org, entry_id = projected_org
    with db.begin() as conn:
        dead_id = conn.execute(
            text(
                "INSERT INTO projection_dead_letters (projection, change_id, tx, error)"
                " SELECT 'entries', id, tx, 'RuntimeError: boom' FROM changes"
                " WHERE entity_id = :e ORDER BY tx DESC, id DESC LIMIT 1 RETURNING id"
            ),
            {"e": uuid.UUID(entry_id)},
        ).scalar_one()
    _, out, _ = run(capsys, "status", "--json")
    entries = next(s for s in json.loads(out) if s["name"] == "entries")
    assert entries["dead_letters"] >= 1

    code, out, _ = run(capsys, "retry", "entries")
    assert code == 0
    first, *rest = out.splitlines()
    resolved = re.fullmatch(r"(\d+) dead letters resolved, 0 still failing", first)
    assert resolved
    assert int(resolved.group(1)) >= 1
    assert len(rest) == 1
    assert rest[0].startswith("entries: ")
    with db.connect() as conn:
        resolved_at = conn.execute(
            text("SELECT resolved_at FROM projection_dead_letters WHERE id = :id"),
            {"id": dead_id},
        ).scalar_one()
    assert resolved_at is not None
    code, out, _ = run(capsys, "verify", "entries", "--org", str(org.id))
    assert (code, out) == (0, "entries: ok\n")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_in_place_on_a_terminal() -> None:
    stream = Terminal()
    bar = ProgressBar("rebuild x", stream, width=4)
    bar("load a long step name", 0, 2)
    bar("swap", 2, 2)
    bar.close()
    output = stream.getvalue()
    assert output.count("\r") == 2
    assert output.endswith("\n")
    assert output.count("\n") == 1
    last = output.split("\r")[-1]
    assert last.startswith("rebuild x [####] 2/2 swap")
    assert len(last.rstrip("\n")) >= len("rebuild x [----] 0/2 load a long step name")
