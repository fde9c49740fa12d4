"""Versions on the read side (API.md, "Versions and conditional writes"): every entity the
query API returns shows the `version` and `updated_at` of the command API's last answer
about it, and a rebuild of the projections shows the same ones."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from projections.rebuild import rebuild
from tests.conftest import BackgroundProjector
from tests.factories import OrgHandle, make_org, make_user
from tests.projections.conftest import drain
from tests.query_api.catalog.helpers import Reader, Writer

DAY = "2026-03-02"


@dataclass(frozen=True)
class Created:
    """One entity as the command API answered its creation, where the command API edits it,
    and every read of the query API that shows it: (path, parameters)."""

    answer: dict[str, Any]
    path: str
    reads: tuple[tuple[str, dict[str, str]], ...]
    key: str = "id"


@dataclass(frozen=True)
class Kind:
    create: Callable[[Writer, OrgHandle, Engine], Created]
    edit: dict[str, Any]


def _post(writer: Writer, org: OrgHandle, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return writer.send("POST", org.path(path), org.owner, body)


def _name() -> str:
    return f"Name {uuid.uuid4().hex[:8]}"


def _entry(writer: Writer, org: OrgHandle, db: Engine) -> Created:
    body = {"start_at": f"{DAY}T09:00:00Z", "end_at": f"{DAY}T10:00:00Z"}
    answer = _post(writer, org, "/time-entries", body)
    report = ("/reports/detailed", {"from": DAY, "to": DAY})
    return Created(answer, f"/time-entries/{answer['id']}", (("/time-entries", {}), report))


def _client(writer: Writer, org: OrgHandle, db: Engine) -> Created:
    answer = _post(writer, org, "/clients", {"name": _name()})
    return Created(answer, f"/clients/{answer['id']}", (("/clients", {}),))


def _project(writer: Writer, org: OrgHandle, db: Engine) -> Created:
    answer = _post(writer, org, "/projects", {"name": _name()})
    path = f"/projects/{answer['id']}"
    return Created(answer, path, (("/projects", {}), (path, {})))


def _task(writer: Writer, org: OrgHandle, db: Engine) -> Created:
    tasks = f"/projects/{_post(writer, org, '/projects', {'name': _name()})['id']}/tasks"
    answer = _post(writer, org, tasks, {"name": _name()})
    return Created(answer, f"{tasks}/{answer['id']}", ((tasks, {}),))


def _tag(writer: Writer, org: OrgHandle, db: Engine) -> Created:
    answer = _post(writer, org, "/tags", {"name": _name()})
    return Created(answer, f"/tags/{answer['id']}", (("/tags", {}),))


def _member(writer: Writer, org: OrgHandle, db: Engine) -> Created:
    user = make_user(db)
    answer = _post(writer, org, "/members", {"email": user.email, "role": "member"})
    return Created(answer, f"/members/{user.id}", (("/members", {}),), key="user_id")


def _team(writer: Writer, org: OrgHandle, db: Engine) -> Created:
    answer = _post(writer, org, "/teams", {"name": _name()})
    return Created(answer, f"/teams/{answer['id']}", (("/teams", {}),))


KINDS = {
    "time_entry": Kind(_entry, {"description": "Edited"}),
    "client": Kind(_client, {"name": "Client, edited"}),
    "project": Kind(_project, {"name": "Project, edited"}),
    "task": Kind(_task, {"done": True}),
    "tag": Kind(_tag, {"name": "edited"}),
    "member": Kind(_member, {"role": "manager"}),
    "team": Kind(_team, {"name": "Team, edited"}),
}


def _edit(writer: Writer, org: OrgHandle, created: Created, kind: Kind) -> dict[str, Any]:
    edited = writer.send("PATCH", org.path(created.path), org.owner, kind.edit, status=200)
    assert edited["version"] == created.answer["version"] + 1
    assert _instant(edited["updated_at"]) > _instant(created.answer["updated_at"])
    return edited


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _shown(reader: Reader, org: OrgHandle, created: Created) -> list[tuple[int, datetime]]:
    """(version, updated_at) of the entity in every read that shows it, in UTC."""
    shown = []
    for path, params in created.reads:
        data = reader.data(org.path(path), org.owner, **params)
        if isinstance(data, dict):  # the detailed report, or one entity
            data = data.get("entries", [data])
        [item] = [i for i in data if i[created.key] == created.answer[created.key]]
        assert item["updated_at"].endswith("Z")
        shown.append((item["version"], _instant(item["updated_at"])))
    return shown


def _said(answer: dict[str, Any], created: Created) -> list[tuple[int, datetime]]:
    return [(answer["version"], _instant(answer["updated_at"]))] * len(created.reads)


@pytest.mark.parametrize("name", list(KINDS))
def test_the_query_api_shows_the_version_of_the_last_write(
    api: httpx.Client,
    qapi: httpx.Client,
    db: Engine,
    projector_running: BackgroundProjector,
    name: str,
) -> None:
    kind = KINDS[name]
    org = make_org(db)
    writer = Writer(api)
    reader = Reader(qapi, writer)
    created = kind.create(writer, org, db)
    assert created.answer["version"] == 1
    assert _shown(reader, org, created) == _said(created.answer, created)

    edited = _edit(writer, org, created, kind)

    assert _shown(reader, org, created) == _said(edited, created)


def test_a_rebuild_of_the_projections_keeps_versions_and_updated_at(
    api: httpx.Client, qapi: httpx.Client, db: Engine
) -> None:
    # No projector thread: a rebuild racing a concurrent advance of the same projection
    # can fail with a serialization error (its snapshot is taken before its lock).
    sessions = sessionmaker(bind=db)
    org = make_org(db)
    writer = Writer(api)
    reader = Reader(qapi, writer)
    edited: list[tuple[Created, dict[str, Any]]] = []
    for kind in KINDS.values():
        created = kind.create(writer, org, db)
        edited.append((created, _edit(writer, org, created, kind)))
    drain(sessions)
    before = [_shown(reader, org, created) for created, _ in edited]
    assert before == [_said(answer, created) for created, answer in edited]

    for projection in ("catalog", "entries"):
        rebuild(sessions, projection)
    drain(sessions)

    assert [_shown(reader, org, created) for created, _ in edited] == before
