"""Delta sync (API.md, "Delta sync"): a client that applies the pages to a copy holds what the
query API's lists show, whatever happened in between; cursors are the caller's own; a
cursor the server can no longer serve says `reset`."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from projections.rebuild import rebuild
from projections.sync import prune_tombstones
from tests.factories import OrgHandle, UserHandle, add_member, make_org
from tests.projections.conftest import drain
from tests.query_api.catalog.helpers import Reader, Writer
from tests.query_api.sync_client import SyncClient, listed, sync_page

OPERATIONS = (
    "entry",
    "entry",
    "edit",
    "move",
    "delete",
    "project",
    "rename_project",
    "client",
    "rename_client",
    "task",
    "rename_task",
    "tag",
    "rename_tag",
    "delete_tag",
    "join_team",
    "leave_team",
    "rename_member",
    "promote",
    "pull",
)


@dataclass
class World:
    """An organization with an owner (who sees all), a manager leading a team, a member of
    that team and another member outside it (until an operation moves them in)."""

    db: Engine
    writer: Writer
    reader: Reader
    org: OrgHandle
    manager: UserHandle
    member: UserHandle
    other: UserHandle
    team: str
    rng: random.Random
    entries: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    tasks: list[tuple[str, str]] = field(default_factory=list)  # (project, task)
    tags: list[str] = field(default_factory=list)
    other_in_team: bool = False
    other_is_admin: bool = False

    @classmethod
    def build(cls, db: Engine, writer: Writer, reader: Reader, seed: int) -> World:
        org = make_org(db)
        manager = add_member(db, org, "manager")
        member = add_member(db, org, "member")
        other = add_member(db, org, "member")
        team = writer.send("POST", org.path("/teams"), org.owner, {"name": "Team"})["id"]
        for user, lead in ((manager, True), (member, False)):
            path = org.path(f"/teams/{team}/members/{user.id}")
            writer.send("PUT", path, org.owner, {"is_lead": lead}, status=200)
        return cls(db, writer, reader, org, manager, member, other, team, random.Random(seed))

    @property
    def users(self) -> list[UserHandle]:
        return [self.org.owner, self.manager, self.member, self.other]

    def send(self, method: str, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        return self.writer.send(method, self.org.path(path), self.org.owner, body, status)

    def pick(self, items: list[Any]) -> Any:
        return self.rng.choice(items) if items else None

    def name(self, prefix: str) -> str:
        return f"{prefix} {uuid.uuid4().hex[:6]}"

    def run(self, operation: str, clients: list[SyncClient]) -> None:  # noqa: C901 - one branch each
        match operation:
            case "entry":
                day = self.rng.randrange(1, 28)
                body: dict[str, Any] = {
                    "start_at": f"2026-03-{day:02d}T{self.rng.randrange(0, 20):02d}:00:00Z",
                    "end_at": None,
                    "user_id": str(self.pick(self.users).id),
                    "description": self.name("Work"),
                }
                body["end_at"] = body["start_at"].replace(":00:00Z", ":45:00Z")
                project_task = self.pick(self.tasks)
                if project_task and self.rng.random() < 0.5:
                    body["project_id"], body["task_id"] = project_task
                elif self.projects:
                    body["project_id"] = self.pick(self.projects)
                if self.tags:
                    body["tag_ids"] = self.rng.sample(self.tags, self.rng.randrange(0, 2))
                self.entries.append(self.send("POST", "/time-entries", body, 201)["id"])
            case "edit" if self.entries:
                self.send("PATCH", f"/time-entries/{self.pick(self.entries)}", {"billable": True})
            case "move" if self.entries:
                user = self.pick(self.users)
                self.send(
                    "PATCH", f"/time-entries/{self.pick(self.entries)}", {"user_id": str(user.id)}
                )
            case "delete" if self.entries:
                entry = self.pick(self.entries)
                self.entries.remove(entry)
                self.send("DELETE", f"/time-entries/{entry}", status=204)
            case "project":
                body = {"name": self.name("Project")}
                if self.clients and self.rng.random() < 0.5:
                    body["client_id"] = self.pick(self.clients)
                self.projects.append(self.send("POST", "/projects", body, 201)["id"])
            case "rename_project" if self.projects:
                self.send(
                    "PATCH", f"/projects/{self.pick(self.projects)}", {"name": self.name("P")}
                )
            case "client":
                self.clients.append(
                    self.send("POST", "/clients", {"name": self.name("C")}, 201)["id"]
                )
            case "rename_client" if self.clients:
                self.send("PATCH", f"/clients/{self.pick(self.clients)}", {"name": self.name("C")})
            case "task" if self.projects:
                project = self.pick(self.projects)
                task = self.send(
                    "POST", f"/projects/{project}/tasks", {"name": self.name("T")}, 201
                )
                self.tasks.append((project, task["id"]))
            case "rename_task" if self.tasks:
                project, task = self.pick(self.tasks)
                self.send("PATCH", f"/projects/{project}/tasks/{task}", {"name": self.name("T")})
            case "tag":
                self.tags.append(self.send("POST", "/tags", {"name": self.name("tag")}, 201)["id"])
            case "rename_tag" if self.tags:
                self.send("PATCH", f"/tags/{self.pick(self.tags)}", {"name": self.name("tag")})
            case "delete_tag" if self.tags:
                tag = self.pick(self.tags)
                self.tags.remove(tag)
                self.send("DELETE", f"/tags/{tag}", status=204)
            case "join_team" if not self.other_in_team:
                self.other_in_team = True
                self.send("PUT", f"/teams/{self.team}/members/{self.other.id}", {})
            case "leave_team" if self.other_in_team:
                self.other_in_team = False
                self.send("DELETE", f"/teams/{self.team}/members/{self.other.id}", status=204)
            case "rename_member":
                body = {"full_name": self.name("User")}
                self.writer.send("PATCH", "/users/me", self.member, body, status=200)
            case "promote":  # `other` becomes an admin (sees everyone), or a member again
                self.other_is_admin = not self.other_is_admin
                role = "admin" if self.other_is_admin else "member"
                self.send("PATCH", f"/members/{self.other.id}", {"role": role})
            case "pull":
                self.pick(clients).pull()


def _clients(world: World, limit: int) -> list[SyncClient]:
    users = (world.org.owner, world.manager, world.member, world.other)
    return [SyncClient(world.reader, world.org, user, limit=limit) for user in users]


def _assert_synced(world: World, clients: list[SyncClient]) -> None:
    for client in clients:
        client.pull()
        assert client.copy == listed(world.reader, world.org, client.user), client.user


@settings(
    max_examples=6,
    deadline=None,
    # Each example is a world built through real servers: shrinking one takes many minutes.
    # The failing example is printed as found (operations, seed, limit) to replay it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    operations=st.lists(st.sampled_from(OPERATIONS), min_size=8, max_size=30),
    seed=st.integers(0, 2**16),
    limit=st.sampled_from([1, 3, 500]),
)
def test_a_synced_copy_equals_the_lists_whatever_happened_in_between(
    db: Engine,
    writer: Writer,
    reader: Reader,
    operations: list[str],
    seed: int,
    limit: int,
) -> None:
    note(f"operations={operations} seed={seed} limit={limit}")
    world = World.build(db, writer, reader, seed)
    clients = _clients(world, limit)
    for operation in operations:
        world.run(operation, clients)
    _assert_synced(world, clients)
    # Then more happens, and the same cursors carry on from where they stood.
    for operation in ("entry", "move", "rename_project", "delete", "edit", "rename_member"):
        world.run(operation, clients)
    _assert_synced(world, clients)


def test_a_snapshot_then_only_what_changed(db: Engine, writer: Writer, reader: Reader) -> None:
    world = World.build(db, writer, reader, 1)
    for operation in ("project", "tag", "entry", "entry", "entry"):
        world.run(operation, [])
    owner = SyncClient(reader, world.org, world.org.owner, limit=2)
    owner.pull()
    assert owner.pages >= 4  # 3 entries, a project, a tag, a team, 4 members: pages of 2
    assert {kind for kind, _ in owner.copy} == {"time_entry", "project", "tag", "member", "team"}
    pages_before = owner.pages
    first = owner.page()  # nothing happened since
    assert (first["changes"], first["has_more"], first["reset"]) == ([], False, False)
    assert owner.pages == pages_before + 1
    world.run("delete", [])
    changes = {(c["entity"], c["op"]) for c in owner.page()["changes"]}
    # The entry goes; its project (if it had one) comes again, with totals without it.
    assert changes - {("project", "upsert")} == {("time_entry", "delete")}


def test_a_snapshot_leaves_out_what_was_deleted_before_it(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = World.build(db, writer, reader, 2)
    world.run("tag", [])
    world.run("delete_tag", [])
    client = SyncClient(reader, world.org, world.org.owner)
    body = client.page()
    assert [c for c in body["changes"] if c["op"] == "delete"] == []


def test_an_entry_moved_out_of_my_view_is_a_delete_and_into_it_an_upsert(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = World.build(db, writer, reader, 3)
    member, other = world.member, world.other
    entry = writer.send(
        "POST",
        world.org.path("/time-entries"),
        world.org.owner,
        {
            "start_at": "2026-03-02T09:00:00Z",
            "end_at": "2026-03-02T10:00:00Z",
            "user_id": str(member.id),
        },
    )["id"]
    mine = SyncClient(reader, world.org, member)
    mine.pull()
    assert ("time_entry", entry) in mine.copy
    world.send("PATCH", f"/time-entries/{entry}", {"user_id": str(other.id)})
    theirs = SyncClient(reader, world.org, other)
    theirs.pull()
    mine.pull()
    assert ("time_entry", entry) not in mine.copy
    assert theirs.copy[("time_entry", entry)]["user"]["id"] == str(other.id)


def _entry_of(world: World, user: UserHandle, day: int) -> str:
    body = {
        "start_at": f"2026-03-{day:02d}T09:00:00Z",
        "end_at": f"2026-03-{day:02d}T10:00:00Z",
        "user_id": str(user.id),
    }
    entry: str = world.writer.send("POST", world.org.path("/time-entries"), world.org.owner, body)[
        "id"
    ]
    return entry


def test_entries_that_enter_or_leave_my_view_come_as_upserts_and_deletes(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = World.build(db, writer, reader, 4)
    theirs = _entry_of(world, world.other, 3)
    manager = SyncClient(reader, world.org, world.manager)
    manager.pull()
    tags_only = SyncClient(reader, world.org, world.manager, entities="tag,team")
    tags_only.pull()
    assert ("time_entry", theirs) not in manager.copy
    world.run("join_team", [])  # the manager now sees `other`, their past entries too
    tags_only.pull()  # nothing of theirs depends on the view
    assert tags_only.resets == 0
    assert {kind for kind, _ in tags_only.copy} == {"team"}
    manager.pull()
    assert manager.resets == 0
    assert ("time_entry", theirs) in manager.copy
    assert manager.copy == listed(reader, world.org, world.manager)
    world.run("leave_team", [])
    body = manager.page()
    assert body["reset"] is False
    assert {
        "entity": "time_entry",
        "id": theirs,
        "op": "delete",
        "version": None,
        "data": None,
    } in (body["changes"])
    manager.cursor = body["next_cursor"]
    for change in body["changes"]:
        if change["op"] == "delete":
            manager.copy.pop((change["entity"], change["id"]), None)
        else:
            manager.copy[(change["entity"], change["id"])] = change["data"]
    manager.pull()
    assert manager.resets == 0
    assert manager.copy == listed(reader, world.org, world.manager)


def test_a_view_too_large_for_a_cursor_starts_over_when_it_changes(
    db: Engine, writer: Writer, reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("query_api.modules.sync.dependencies.MAX_CARRIED_USERS", 1)
    world = World.build(db, writer, reader, 9)
    theirs = _entry_of(world, world.other, 4)
    manager = SyncClient(reader, world.org, world.manager)  # sees two users: too many here
    manager.pull()
    world.run("join_team", [])
    body = manager.page()
    assert body["reset"] is True
    assert body["changes"] == []
    manager.cursor = body["next_cursor"]
    manager.copy.clear()
    manager.pull()
    assert ("time_entry", theirs) in manager.copy
    assert manager.copy == listed(reader, world.org, world.manager)


def test_a_cursor_past_the_pruned_tombstones_starts_over(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = World.build(db, writer, reader, 5)
    world.run("tag", [])
    client = SyncClient(reader, world.org, world.org.owner)
    client.pull()
    world.run("delete_tag", [])
    writer.send("POST", world.org.path("/tags"), world.org.owner, {"name": "after"})
    reader.data(world.org.path("/sync"), world.org.owner, cursor=client.cursor)  # caught up
    with sessionmaker(db)() as session, session.begin():
        while prune_tombstones(session, datetime.now(UTC) + timedelta(days=1)):
            pass
    body = reader.data(world.org.path("/sync"), world.org.owner, cursor=client.cursor)
    assert body["reset"] is True
    client.cursor = body["next_cursor"]
    client.copy.clear()
    client.pull()
    assert client.copy == listed(reader, world.org, world.org.owner)


def test_a_rebuilt_feed_serves_a_new_client_without_starting_it_over(
    db: Engine, api: httpx.Client, qapi: httpx.Client
) -> None:
    """A rebuild puts the organization's horizon at its snapshot's xmin, past the other
    projections' checkpoints until something is written again: a client that starts then
    must still page through, not be told to start over on every page."""
    sessions = sessionmaker(db)
    writer = Writer(api)
    reader = Reader(qapi, writer)
    world = World.build(db, writer, reader, 10)
    for operation in ("tag", "tag", "project", "entry"):
        world.run(operation, [])
    drain(sessions)
    rebuild(sessions, "sync")
    writer.token = ""  # nothing to wait for: everything is projected
    client = SyncClient(reader, world.org, world.org.owner, limit=2)
    client.pull()
    assert client.resets == 0
    assert client.pages > 2
    assert client.copy == listed(reader, world.org, world.org.owner)


def test_entities_narrow_what_comes_and_bind_the_cursor(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = World.build(db, writer, reader, 6)
    for operation in ("tag", "tag", "project", "entry"):
        world.run(operation, [])
    tags = SyncClient(reader, world.org, world.org.owner, entities="tag")
    tags.pull()
    assert {kind for kind, _ in tags.copy} == {"tag"}
    assert len(tags.copy) == 2
    other = sync_page(
        reader, world.org, world.org.owner, cursor=tags.cursor, entities="tag,project"
    )
    assert other.status_code == 422, other.text
    assert other.json()["details"][0]["field"] == "entities"


def test_a_cursor_is_the_callers_own(db: Engine, writer: Writer, reader: Reader) -> None:
    world = World.build(db, writer, reader, 7)
    mine = SyncClient(reader, world.org, world.member)
    mine.pull()
    assert mine.cursor is not None
    other_org = make_org(db, owner=world.member)
    writer.send("POST", other_org.path("/tags"), world.member, {"name": "seen"})  # its token
    refusals = [
        sync_page(reader, world.org, world.other, cursor=mine.cursor),  # another caller
        sync_page(reader, other_org, world.member, cursor=mine.cursor),  # another organization
        sync_page(reader, world.org, world.member, cursor=mine.cursor[:-3] + "abc"),  # forged
        sync_page(reader, world.org, world.member, cursor="garbage"),
        sync_page(reader, world.org, world.member, entities="time_entry,nonsense"),
        sync_page(reader, world.org, world.member, limit=0),
        sync_page(reader, world.org, world.member, limit=1001),
    ]
    for response in refusals:
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error_code"] == "VALIDATION_ERROR"
    stranger = make_org(db)
    assert sync_page(reader, stranger, world.member).status_code == 404


def test_a_change_committed_after_a_later_one_is_not_skipped(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    """The gap case: a transaction takes its id, a later one commits and is synced, then the
    first commits. The client still gets the first's change."""
    world = World.build(db, writer, reader, 8)
    client = SyncClient(reader, world.org, world.org.owner)
    client.pull()
    early_tag = uuid.uuid4()
    with db.connect() as early:
        transaction = early.begin()
        early.execute(text("SELECT pg_current_xact_id()"))  # its id is taken now
        late = writer.send("POST", world.org.path("/tags"), world.org.owner, {"name": "late"})
        client.reader.writer.token = ""  # the late write's token waits for the early one too
        client.pull()  # the feed cannot pass the open transaction: nothing yet, or the late tag
        early.execute(
            text("INSERT INTO tags (id, org_id, name) VALUES (:id, :org, 'early')"),
            {"id": early_tag, "org": world.org.id},
        )
        early.execute(
            text(
                "INSERT INTO changes (org_id, entity, entity_id, op, payload)"
                " VALUES (:org, 'tag', :id, 'created', :payload)"
            ),
            {"id": early_tag, "org": world.org.id, "payload": '{"old": null, "new": {}}'},
        )
        transaction.commit()
    writer.send("POST", world.org.path("/tags"), world.org.owner, {"name": "after both"})
    client.pull()
    assert ("tag", str(early_tag)) in client.copy
    assert ("tag", late["id"]) in client.copy
    assert client.copy == listed(reader, world.org, world.org.owner)
