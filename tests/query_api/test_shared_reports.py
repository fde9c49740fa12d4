"""Shared reports (API.md, "Shared reports"), on the real services: a link reads the report
its creator gets from the report's own endpoint, as they may see it at the time of reading;
unknown, revoked and expired links and those of a creator who lost the role are one 404;
reads are rate limited per client address."""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine, text
from sqlalchemy.orm import sessionmaker

from query_api.exports import XLSX_MEDIA_TYPE
from query_api.modules.shared_reports import dependencies
from shared.config import get_settings
from shared.redis_client import redis_client
from tests.factories import OrgHandle, UserHandle, add_member, make_org
from tests.query_api.catalog.helpers import Reader, Writer, entry

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
WEEK = "2026-W10"  # Monday 2 March 2026


@pytest.fixture(autouse=True)
def generous_rate_limit(environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """These tests read many links from one address: the limit is the last test's business."""
    _forget_public_reads()
    monkeypatch.setattr(get_settings(), "public_report_rate_limit_per_ip", 10_000)
    yield
    _forget_public_reads()


def _forget_public_reads() -> None:
    client = redis_client()
    for key in client.scan_iter("evotrack:ratelimit:public_report:*"):
        client.delete(key)


@dataclass
class World:
    """An organization whose manager leads a team with `member`; `outsider` is in no team
    of theirs. Each of the three worked in the first week of March on one project."""

    org: OrgHandle
    manager: UserHandle
    member: UserHandle
    outsider: UserHandle
    project_id: str


def build_world(db: Engine, writer: Writer) -> World:
    org = make_org(db, currency="USD")
    manager = add_member(db, org, "manager")
    member = add_member(db, org, "member")
    outsider = add_member(db, org, "member", user=None)
    team = writer.send("POST", org.path("/teams"), org.owner, {"name": "Design"})
    for user, lead in ((manager, True), (member, False)):
        path = org.path(f"/teams/{team['id']}/members/{user.id}")
        writer.send("PUT", path, org.owner, {"is_lead": lead}, 200)
    project = writer.send("POST", org.path("/projects"), org.owner, {"name": "Apollo"})
    for hour, user in ((9, manager), (11, member), (14, outsider)):
        start = f"2026-03-02T{hour:02d}:00:00Z"
        end = f"2026-03-02T{hour + 1:02d}:30:00Z"
        entry(writer, org, user, start, end, project_id=project["id"])
    entry(writer, org, member, "2026-03-04T08:00:00Z", "2026-03-04T09:00:00Z")
    return World(org, manager, member, outsider, project["id"])


def share(
    writer: Writer, org: OrgHandle, user: UserHandle, kind: str, params: dict[str, Any], **body: Any
) -> dict[str, Any]:
    body = {"name": f"{kind} for the client", "kind": kind, "params": params, **body}
    return writer.send("POST", org.path("/shared-reports"), user, body)


def public(reader: Reader, token: str, **params: Any) -> httpx.Response:
    headers = {"X-Consistency-Token": reader.writer.token} if reader.writer.token else {}
    return reader.qapi.get(f"/public/reports/{token}", params=params, headers=headers)


def public_data(reader: Reader, token: str, **params: Any) -> dict[str, Any]:
    response = public(reader, token, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_gone(reader: Reader, token: str) -> None:
    """The one 404 of a link that does not open, whatever the reason."""
    response = public(reader, token)
    assert response.status_code == 404, response.text
    assert response.json() == {
        "success": False,
        "error": "Shared report not found",
        "error_code": "NOT_FOUND",
        "details": None,
    }


def test_a_link_reads_the_report_its_creator_gets(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = build_world(db, writer)
    org, manager = world.org, world.manager
    summary_params = {**MARCH, "group_by": ["user", "project"]}
    link = share(writer, org, manager, "summary", summary_params, expires_at=None)
    assert link["url"] == f"/api/v1/public/reports/{link['token']}"
    assert (link["kind"], link["params"]) == ("summary", summary_params)
    body = public_data(reader, link["token"])
    assert body["pagination"] is None
    data = body["data"]
    assert data["name"] == "summary for the client"
    assert data["organization"] == {"name": f"Org {org.id.hex[:6]}", "currency": "USD"}
    assert (data["kind"], data["params"]) == ("summary", summary_params)
    expected = reader.data(org.path("/reports/summary"), manager, group_by="user,project", **MARCH)
    assert data["report"] == expected
    # As the manager sees it: their team, not the outsider.
    users = {group["key"] for group in data["report"]["groups"]}
    assert users == {str(world.manager.id), str(world.member.id)}

    detailed = share(writer, org, manager, "detailed", {**MARCH, "project_id": world.project_id})
    body = public_data(reader, detailed["token"], page_size=1)
    direct = reader.get(
        org.path("/reports/detailed"), manager, page_size=1, project_id=world.project_id, **MARCH
    ).json()
    assert body["data"]["report"] == direct["data"]
    assert body["pagination"] == {**direct["pagination"], "next_cursor": None}
    assert body["pagination"]["total"] == 2

    timesheet = share(
        writer, org, manager, "timesheet", {"week": WEEK, "user_id": str(world.member.id)}
    )
    data = public_data(reader, timesheet["token"])["data"]
    direct = reader.data(
        org.path("/reports/timesheet"), manager, week=WEEK, user_id=world.member.id
    )
    assert data["report"] == direct
    assert data["report"]["total"] == 5400 + 3600


def test_a_link_exports_csv_and_xlsx_as_the_report_does(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = build_world(db, writer)
    org, manager = world.org, world.manager
    summary = share(writer, org, manager, "summary", {**MARCH, "group_by": ["user"]})
    response = public(reader, summary["token"], format="csv")
    assert response.status_code == 200, response.text
    direct = reader.get(
        org.path("/reports/summary"), manager, group_by="user", format="csv", **MARCH
    )
    assert response.content == direct.content
    assert response.headers["content-disposition"] == direct.headers["content-disposition"]

    detailed = share(writer, org, manager, "detailed", dict(MARCH))
    response = public(reader, detailed["token"], format="xlsx")
    assert response.headers["content-type"] == XLSX_MEDIA_TYPE
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("date", "start_at", "end_at", "user")
    assert len(rows) == 1 + 3  # the outsider's entry is not the manager's to see

    timesheet = share(
        writer, org, manager, "timesheet", {"week": WEEK, "user_id": str(world.member.id)}
    )
    response = public(reader, timesheet["token"], format="csv")
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0] == ["project", "task", *(f"2026-03-0{d}" for d in range(2, 9)), "total"]
    assert sorted(line[0] for line in lines[1:]) == ["", "Apollo"]
    assert {line[-1] for line in lines[1:]} == {"5400", "3600"}


def test_unknown_revoked_and_expired_links_are_the_same_404(
    db: Engine, writer: Writer, reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(db, writer)
    org, manager = world.org, world.manager
    assert_gone(reader, "no-such-token")
    revoked = share(writer, org, manager, "summary", {**MARCH, "group_by": ["project"]})
    assert public(reader, revoked["token"]).status_code == 200
    writer.send("DELETE", org.path(f"/shared-reports/{revoked['id']}"), manager, status=204)
    assert_gone(reader, revoked["token"])

    soon = datetime.now(UTC) + timedelta(hours=1)
    expiring = share(writer, org, manager, "detailed", dict(MARCH), expires_at=soon.isoformat())
    assert expiring["expires_at"].startswith(soon.strftime("%Y-%m-%dT%H:%M:%S"))
    assert public(reader, expiring["token"]).status_code == 200
    monkeypatch.setattr(dependencies, "now", lambda: soon + timedelta(seconds=1))
    assert_gone(reader, expiring["token"])
    listed = reader.data(org.path("/shared-reports"), manager)
    assert [item["id"] for item in listed] == [expiring["id"]]  # expired, not revoked


def test_a_revoke_holds_before_the_projection_applies_it(
    db: Engine, api: httpx.Client, qapi: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No projector runs here: the catalog still holds the link after its revoke, and the
    read already refuses it, from the change log's unapplied tail. A tail too long to look
    through is a 503, never a link shown that may be revoked."""
    org = make_org(db)
    response = api.post(
        org.path("/shared-reports"),
        json={"name": "week", "kind": "timesheet", "params": {"week": WEEK}},
        headers=org.owner.headers,
    )
    assert response.status_code == 201, response.text
    link = response.json()["data"]
    project_everything(db)
    assert qapi.get(f"/public/reports/{link['token']}").status_code == 200
    tag = api.post(org.path("/tags"), json={"name": "unprojected"}, headers=org.owner.headers)
    assert tag.status_code == 201, tag.text
    with monkeypatch.context() as patched:
        patched.setattr(dependencies, "MAX_UNAPPLIED", 0)
        lagging = qapi.get(f"/public/reports/{link['token']}")
        assert (lagging.status_code, lagging.json()["error_code"]) == (503, "PROJECTION_LAG")
        assert lagging.headers["Retry-After"] == "1"
    revoked = api.delete(org.path(f"/shared-reports/{link['id']}"), headers=org.owner.headers)
    assert revoked.status_code == 204, revoked.text
    with db.connect() as conn:
        still = conn.execute(
            text("SELECT count(*) FROM proj_shared_reports WHERE id = :id"), {"id": link["id"]}
        ).scalar_one()
    assert still == 1
    gone = qapi.get(f"/public/reports/{link['token']}")
    assert (gone.status_code, gone.json()["error"]) == (404, "Shared report not found")
    project_everything(db)
    assert qapi.get(f"/public/reports/{link['token']}").status_code == 404


def project_everything(db: Engine) -> None:
    from projections.registry import PROJECTIONS
    from projections.runner import advance

    sessions = sessionmaker(bind=db)
    for projection in PROJECTIONS:
        advance(sessions, projection)


def test_the_creators_role_and_teams_are_applied_when_the_link_is_read(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = build_world(db, writer)
    org, manager = world.org, world.manager
    link = share(writer, org, manager, "summary", {**MARCH, "group_by": ["user"]})
    member_sheet = share(
        writer, org, manager, "timesheet", {"week": WEEK, "user_id": str(world.member.id)}
    )
    assert len(public_data(reader, link["token"])["data"]["report"]["groups"]) == 2

    # Promoted to admin: the link shows the whole organization now.
    members = org.path(f"/members/{manager.id}")
    writer.send("PATCH", members, org.owner, {"role": "admin"}, 200)
    assert len(public_data(reader, link["token"])["data"]["report"]["groups"]) == 3

    # Demoted to member: every link of theirs stops working; back to manager, they work.
    writer.send("PATCH", members, org.owner, {"role": "member"}, 200)
    assert_gone(reader, link["token"])
    writer.send("PATCH", members, org.owner, {"role": "manager"}, 200)
    assert public(reader, member_sheet["token"]).status_code == 200

    # The member left the manager's team: their timesheet is no longer the creator's to see.
    team_id = reader.data(org.path("/teams"), org.owner)[0]["id"]
    path = org.path(f"/teams/{team_id}/members/{world.member.id}")
    writer.send("DELETE", path, org.owner, status=204)
    assert_gone(reader, member_sheet["token"])

    # The creator left the organization.
    writer.send("DELETE", members, org.owner, status=204)
    assert_gone(reader, link["token"])


def test_links_are_listed_without_tokens_and_stored_hashed(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = build_world(db, writer)
    org, manager = world.org, world.manager
    mine = share(writer, org, manager, "summary", {**MARCH, "group_by": ["day"]})
    owners = share(writer, org, org.owner, "timesheet", {"week": WEEK})
    listed = reader.data(org.path("/shared-reports"), manager)
    assert listed == [
        {
            "id": mine["id"],
            "name": "summary for the client",
            "kind": "summary",
            "params": {**MARCH, "group_by": ["day"]},
            "created_by": str(manager.id),
            "expires_at": None,
            "created_at": listed[0]["created_at"],
        }
    ]
    everyone = reader.data(org.path("/shared-reports"), org.owner)
    assert [item["id"] for item in everyone] == [owners["id"], mine["id"]]
    assert reader.data(org.path("/shared-reports"), world.member) == []
    for token in (mine["token"], owners["token"]):
        assert token not in str(everyone)
        with db.connect() as conn:
            for table in ("shared_reports", "proj_shared_reports", "changes"):
                clear = conn.execute(
                    text(f"SELECT count(*) FROM {table} t WHERE t::text LIKE :token"),  # noqa: S608
                    {"token": f"%{token}%"},
                ).scalar_one()
                assert clear == 0, table
        assert len(token) >= 43  # secrets.token_urlsafe(32): 256 bits


def test_reads_are_rate_limited_per_client_address(
    db: Engine, writer: Writer, reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = make_org(db)
    link = share(writer, org, org.owner, "timesheet", {"week": WEEK})
    assert public(reader, link["token"]).status_code == 200
    _forget_public_reads()
    monkeypatch.setattr(get_settings(), "public_report_rate_limit_per_ip", 3)
    answers = [public(reader, token).status_code for token in [link["token"], "guess"] * 2]
    assert answers == [200, 404, 200, 429]
    refused = public(reader, link["token"])
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= dependencies.RATE_LIMIT_WINDOW_SECONDS
    assert refused.json()["error_code"] == "RATE_LIMITED"


class _Records(logging.Handler):
    """The request lines logged; the server logs one just after it has answered."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.logged = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "request":
            self.records.append(record)
            self.logged.set()


def test_the_request_log_never_shows_a_links_token(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = build_world(db, writer)
    link = share(writer, world.org, world.manager, "summary", {**MARCH, "group_by": ["user"]})
    requests = logging.getLogger("evotrack.http")
    records, level = _Records(), requests.level
    requests.addHandler(records)
    requests.setLevel(logging.INFO)
    try:
        public_data(reader, link["token"])
        assert records.logged.wait(60), "no request line was logged"
    finally:
        requests.removeHandler(records)
        requests.setLevel(level)
    paths = [getattr(r, "path", None) for r in records.records]
    assert "/public/reports/{token}" in paths  # the route template
    assert all(link["token"] not in str(path) for path in paths)


def _pdf_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)


def test_a_link_renders_each_report_as_the_pdf_its_endpoint_makes(
    db: Engine, writer: Writer, reader: Reader
) -> None:
    world = build_world(db, writer)
    org, manager = world.org, world.manager
    name = f"Org {org.id.hex[:6]}"
    summary = share(writer, org, manager, "summary", {**MARCH, "group_by": ["user"]})
    text = _pdf_text(public(reader, summary["token"], format="pdf"))
    assert name in text
    assert "Summary report, 2026-03-01 to 2026-03-31" in text
    direct = _pdf_text(
        reader.get(org.path("/reports/summary"), manager, group_by="user", format="pdf", **MARCH)
    )
    made = re.compile(r"Made .* UTC\.")
    assert made.sub("", text) == made.sub("", direct)  # the same document but its time

    detailed = share(writer, org, manager, "detailed", dict(MARCH))
    text = _pdf_text(public(reader, detailed["token"], format="pdf"))
    assert "Detailed report, 2026-03-01 to 2026-03-31" in text
    timesheet = share(
        writer, org, manager, "timesheet", {"week": WEEK, "user_id": str(world.member.id)}
    )
    text = _pdf_text(public(reader, timesheet["token"], format="pdf"))
    assert "Timesheet, 2026-W10" in text
    assert "2:30:00" in text  # the week's total: 5400 + 3600 seconds
