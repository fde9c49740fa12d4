"""EntryReferenceService, called directly on a session of the test database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from command_api.modules.projects.references import EntryReferences, EntryReferenceService
from shared.errors import BusinessRuleError, NotFoundError
from tests.command_api.projects.helpers import make_project, make_tag, make_task
from tests.factories import OrgHandle, UserHandle


@contextmanager
def counted_queries(db: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db, "before_cursor_execute", count)


def _uuid(record: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(record["id"])


def _put_member(
    api, org: OrgHandle, project: dict[str, Any], user: UserHandle, rate: int | None
) -> None:
    response = api.put(
        org.path(f"/projects/{project['id']}/members/{user.id}"),
        json={"hourly_rate": rate},
        headers=org.owner.headers,
    )
    assert response.status_code == 200, response.text


def _patch(api, org: OrgHandle, suffix: str, body: dict[str, Any]) -> None:
    response = api.patch(org.path(suffix), json=body, headers=org.owner.headers)
    assert response.status_code == 200, response.text


def _delete(api, org: OrgHandle, suffix: str) -> None:
    assert api.delete(org.path(suffix), headers=org.owner.headers).status_code == 204


def test_nothing_to_resolve(db, org: OrgHandle):
    with Session(db) as session:
        refs = EntryReferenceService(session).resolve(
            org.id, org.owner.id, None, None, [], for_new_entry=True
        )
    assert refs == EntryReferences(None, None, None, None, None, ())


def test_resolves_project_task_tags_and_rates(api, db, org: OrgHandle, member: UserHandle):
    project = make_project(api, org, hourly_rate=9000, billable=False)
    task = make_task(api, org, project["id"])
    tag_a, tag_b = make_tag(api, org), make_tag(api, org)
    _put_member(api, org, project, member, 7000)
    tags = [_uuid(tag_b), _uuid(tag_a), _uuid(tag_b)]

    with Session(db) as session, counted_queries(db) as queries:
        service = EntryReferenceService(session)
        refs = service.resolve(
            org.id, member.id, _uuid(project), _uuid(task), tags, for_new_entry=True
        )
        owner_refs = service.resolve(
            org.id, org.owner.id, _uuid(project), None, [], for_new_entry=True
        )

    assert refs == EntryReferences(
        project_id=_uuid(project),
        project_billable=False,
        project_rate_amount=9000,
        project_member_rate_amount=7000,
        task_id=_uuid(task),
        tag_ids=(_uuid(tag_b), _uuid(tag_a)),
    )
    # The owner is not a member of the project: no project-member rate.
    assert owner_refs.project_member_rate_amount is None
    assert owner_refs.project_rate_amount == 9000
    # At most one query per kind: task, project, project member and tags, then project and
    # project member.
    assert len(queries) <= 4 + 2


def test_a_task_alone_brings_its_project(api, db, org: OrgHandle):
    project = make_project(api, org)
    task = make_task(api, org, project["id"])

    with Session(db) as session:
        refs = EntryReferenceService(session).resolve(
            org.id, org.owner.id, None, _uuid(task), [], for_new_entry=True
        )

    assert (refs.project_id, refs.task_id, refs.project_billable) == (
        _uuid(project),
        _uuid(task),
        True,
    )


def _expect_not_found(db, org: OrgHandle, project_id=None, task_id=None, tag_ids=()) -> str:
    with Session(db) as session, pytest.raises(NotFoundError) as raised:
        EntryReferenceService(session).resolve(
            org.id, org.owner.id, project_id, task_id, list(tag_ids), for_new_entry=False
        )
    return raised.value.message


def test_foreign_unknown_and_deleted_references_are_not_found(
    api, db, org: OrgHandle, other_org: OrgHandle
):
    project = make_project(api, org)
    sibling = make_project(api, org)
    task = make_task(api, org, project["id"])
    tag = make_tag(api, org)
    foreign_project = make_project(api, other_org)
    foreign_task = make_task(api, other_org, foreign_project["id"])
    foreign_tag = make_tag(api, other_org)
    deleted_tag = make_tag(api, org)
    _delete(api, org, f"/tags/{deleted_tag['id']}")
    unknown = uuid.uuid4()

    assert foreign_project["id"] in _expect_not_found(db, org, project_id=_uuid(foreign_project))
    assert str(unknown) in _expect_not_found(db, org, project_id=unknown)
    assert foreign_task["id"] in _expect_not_found(db, org, task_id=_uuid(foreign_task))
    # A task of another project of the same organization.
    assert task["id"] in _expect_not_found(db, org, project_id=_uuid(sibling), task_id=_uuid(task))
    assert foreign_tag["id"] in _expect_not_found(
        db, org, project_id=_uuid(project), tag_ids=[_uuid(tag), _uuid(foreign_tag)]
    )
    assert deleted_tag["id"] in _expect_not_found(db, org, tag_ids=[_uuid(deleted_tag)])


def test_deleted_tasks_and_tasks_of_deleted_projects_are_not_found(api, db, org: OrgHandle):
    project = make_project(api, org)
    deleted_task = make_task(api, org, project["id"])
    _delete(api, org, f"/projects/{project['id']}/tasks/{deleted_task['id']}")
    doomed = make_project(api, org)
    orphan = make_task(api, org, doomed["id"])
    _delete(api, org, f"/projects/{doomed['id']}")

    _expect_not_found(db, org, project_id=_uuid(project), task_id=_uuid(deleted_task))
    _expect_not_found(db, org, task_id=_uuid(orphan))
    _expect_not_found(db, org, project_id=_uuid(doomed))


def test_archived_projects_and_done_tasks_take_no_new_entries(api, db, org: OrgHandle):
    archived = make_project(api, org)
    _patch(api, org, f"/projects/{archived['id']}", {"archived": True})
    project = make_project(api, org)
    done = make_task(api, org, project["id"])
    _patch(api, org, f"/projects/{project['id']}/tasks/{done['id']}", {"done": True})

    with Session(db) as session:
        service = EntryReferenceService(session)
        with pytest.raises(BusinessRuleError, match="archived") as raised:
            service.resolve(org.id, org.owner.id, _uuid(archived), None, [], for_new_entry=True)
        assert archived["name"] in raised.value.message
        with pytest.raises(BusinessRuleError, match="done"):
            service.resolve(org.id, org.owner.id, None, _uuid(done), [], for_new_entry=True)
        # Existing entries may keep (or be edited with) them.
        kept = service.resolve(org.id, org.owner.id, _uuid(archived), None, [], for_new_entry=False)
        kept_task = service.resolve(
            org.id, org.owner.id, _uuid(project), _uuid(done), [], for_new_entry=False
        )
    assert kept.project_id == _uuid(archived)
    assert kept_task.task_id == _uuid(done)


def test_resolve_many_answers_per_item(
    api, db, org: OrgHandle, other_org: OrgHandle, member: UserHandle
):
    project = make_project(api, org, hourly_rate=100)
    other = make_project(api, org)
    task = make_task(api, org, project["id"])
    tag = make_tag(api, org)
    archived = make_project(api, org)
    _patch(api, org, f"/projects/{archived['id']}", {"archived": True})
    foreign_tag = make_tag(api, other_org)
    _put_member(api, org, project, member, 150)
    owner = org.owner.id

    items = [
        (member.id, _uuid(project), _uuid(task), [_uuid(tag)]),
        (owner, None, _uuid(task), []),
        (owner, _uuid(other), _uuid(task), []),
        (owner, _uuid(archived), None, []),
        (owner, None, None, [_uuid(foreign_tag)]),
        (owner, None, None, []),
    ]
    with Session(db) as session:
        results = EntryReferenceService(session).resolve_many(org.id, items)

    assert len(results) == len(items)
    first, second, third, fourth, fifth, sixth = results
    assert first == EntryReferences(_uuid(project), True, 100, 150, _uuid(task), (_uuid(tag),))
    assert isinstance(second, EntryReferences)
    assert (second.project_id, second.project_member_rate_amount) == (_uuid(project), None)
    assert isinstance(third, NotFoundError)
    assert isinstance(fourth, BusinessRuleError)
    assert isinstance(fifth, NotFoundError)
    assert foreign_tag["id"] in fifth.message
    assert sixth == EntryReferences(None, None, None, None, None, ())


def test_resolve_many_costs_the_same_for_many_items(api, db, org: OrgHandle, member: UserHandle):
    projects = [make_project(api, org) for _ in range(5)]
    tasks = [make_task(api, org, p["id"]) for p in projects]
    tags = [make_tag(api, org) for _ in range(5)]
    for project in projects:
        _put_member(api, org, project, member, 10)

    def items(count: int) -> list[Any]:
        return [
            (
                member.id if i % 2 else org.owner.id,
                None if i % 3 == 0 else _uuid(projects[i % 5]),
                _uuid(tasks[i % 5]),
                [_uuid(t) for t in tags[: i % 5]],
            )
            for i in range(count)
        ]

    with Session(db) as session, counted_queries(db) as few:
        EntryReferenceService(session).resolve_many(org.id, items(2))
    with Session(db) as session, counted_queries(db) as many:
        results = EntryReferenceService(session).resolve_many(org.id, items(200))

    assert all(isinstance(r, EntryReferences) for r in results)
    assert len(many) == len(few) <= 4
    rates = {
        r.project_member_rate_amount  # type: ignore[union-attr]
        for r, item in zip(results, items(200), strict=True)
        if item[0] == member.id
    }
    assert rates == {10}
