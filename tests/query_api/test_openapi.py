"""The query API's OpenAPI document says what the server does: every parameter it enforces,
every status it answers, names a generated client can live with (issue 13 points 1-3).

tests/shared/test_openapi.py holds what both documents share (errors as the envelope,
names without noise); tests/contract/test_schemathesis.py runs schemathesis against both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from query_api.exports import XLSX_MEDIA_TYPE
from query_api.main import create_app

ORG = "/api/v1/organizations/{org_id}"
SCHEMAS = "#/components/schemas/"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app().openapi()


def reads(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        if path.startswith("/api/"):
            yield path, item["get"]


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [p for p in operation.get("parameters", []) if p["name"] == name]
    assert len(found) == 1, (operation["operationId"], name, found)
    return found[0]


def test_operation_ids_read_well_in_a_generated_client(spec: dict[str, Any]) -> None:
    assert {operation["operationId"] for _, operation in reads(spec)} == {
        "list_time_entries",
        "get_detailed_report",
        "get_summary_report",
        "get_timesheet",
        "get_dashboard",
        "get_me",
        "list_organizations",
        "get_organization",
        "list_members",
        "list_teams",
        "list_clients",
        "list_projects",
        "get_project",
        "list_tasks",
        "list_tags",
        "get_running_timer",
        "list_notifications",
        "get_projection_status",
        "get_sync_changes",
        "list_webhooks",
        "list_webhook_deliveries",
        "list_shared_reports",
        "read_shared_report",
    }


def test_schema_names_say_what_they_hold(spec: dict[str, Any]) -> None:
    names = set(spec["components"]["schemas"])
    assert {
        "TimeEntry",
        "TimeEntryPage",
        "TimeEntrySort",
        "DetailedReport",
        "DetailedReportResponse",
        "SummaryReport",
        "SummaryReportResponse",
        "ReportTotals",
        "RunningTimeEntry",
        "RunningTimeEntryResponse",
        "ProjectionStatusResponse",
        "GroupByDimension",
        "Ref",
    } <= names
    assert names.isdisjoint(
        {"Entry", "EntryPage", "Summary", "Totals", "NamedRef", "TimesheetRef", "EntrySort"}
    )
    assert [name for name in names if name.endswith(("Envelope", "Read"))] == ["ErrorEnvelope"]


def _enums(node: Any, where: str) -> Iterator[str]:
    if isinstance(node, dict):
        if "enum" in node:
            yield where
        for key, value in node.items():
            yield from _enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _enums(value, f"{where}/{index}")


def test_every_enum_is_one_named_schema(spec: dict[str, Any]) -> None:
    """`Role` once, referenced by members, memberships, organizations and the role filter,
    never an inline copy."""
    assert [
        where for where in _enums(spec, "") if not re.fullmatch(r"/components/schemas/\w+", where)
    ] == []
    assert spec["components"]["schemas"]["Role"]["enum"] == ["member", "manager", "admin", "owner"]
    for schema in ("Member", "Membership", "Organization"):
        role = spec["components"]["schemas"][schema]["properties"]["role"]
        assert role.get("$ref") == f"{SCHEMAS}Role", (schema, role)
    role_filter = parameter(spec["paths"][f"{ORG}/members"]["get"], "role")["schema"]
    assert {"$ref": f"{SCHEMAS}Role"} in role_filter["anyOf"]


@pytest.mark.parametrize("report", ["summary", "detailed"])
def test_reports_require_their_range(spec: dict[str, Any], report: str) -> None:
    operation = spec["paths"][f"{ORG}/reports/{report}"]["get"]
    for name in ("from", "to"):
        declared = parameter(operation, name)
        assert declared["required"] is True
        assert (declared["schema"]["type"], declared["schema"]["format"]) == ("string", "date")


def test_listings_take_an_optional_range(spec: dict[str, Any]) -> None:
    operation = spec["paths"][f"{ORG}/time-entries"]["get"]
    assert [parameter(operation, name)["required"] for name in ("from", "to")] == [False, False]


def test_group_by_is_one_or_two_known_dimensions_comma_separated(spec: dict[str, Any]) -> None:
    group_by = parameter(spec["paths"][f"{ORG}/reports/summary"]["get"], "group_by")
    assert (group_by["required"], group_by["style"], group_by["explode"]) == (True, "form", False)
    schema = group_by["schema"]
    assert "explode" not in schema
    assert schema["items"] == {"$ref": f"{SCHEMAS}GroupByDimension"}
    assert (schema["minItems"], schema["maxItems"], schema["uniqueItems"]) == (1, 2, True)
    assert spec["components"]["schemas"]["GroupByDimension"]["enum"][:2] == ["project", "client"]


def test_every_read_declares_the_consistency_token(spec: dict[str, Any]) -> None:
    for _, operation in reads(spec):
        token = parameter(operation, "X-Consistency-Token")
        assert (token["in"], token["required"]) == ("header", False)
        assert "PROJECTION_LAG" in token["description"]


def test_pages_declare_their_bounds(spec: dict[str, Any]) -> None:
    paged = [op for _, op in reads(spec) if "page_size" in str(op.get("parameters"))]
    assert len(paged) == 14
    for operation in paged:
        page_size = parameter(operation, "page_size")["schema"]
        assert (page_size["minimum"], page_size["maximum"], page_size["default"]) == (1, 200, 50)
        assert parameter(operation, "page")["schema"]["minimum"] == 1


@pytest.mark.parametrize(
    ("report", "envelope"),
    [("summary", "SummaryReportResponse"), ("detailed", "DetailedReportResponse")],
)
def test_exports_declare_their_media_types(
    spec: dict[str, Any], report: str, envelope: str
) -> None:
    content = spec["paths"][f"{ORG}/reports/{report}"]["get"]["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": f"{SCHEMAS}{envelope}"}
    assert content["text/csv"]["schema"] == {"type": "string"}
    assert content[XLSX_MEDIA_TYPE]["schema"] == {"type": "string", "format": "binary"}


def test_the_system_state_declares_its_credentials_and_refusals(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/api/v1/system/projections"]["get"]
    assert operation["security"]
    assert {"401", "403", "503"} <= set(operation["responses"])


def test_a_shared_report_is_read_without_credentials_and_declares_its_refusals(
    spec: dict[str, Any],
) -> None:
    operation = spec["paths"]["/api/v1/public/reports/{token}"]["get"]
    assert "security" not in operation
    assert {"404", "422", "429", "503"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    content = operation["responses"]["200"]["content"]
    assert content["application/json"]["schema"] == {"$ref": f"{SCHEMAS}PublicReportResponse"}
    assert content[XLSX_MEDIA_TYPE]["schema"] == {"type": "string", "format": "binary"}
    listed = spec["paths"][f"{ORG}/shared-reports"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"] == {"$ref": f"{SCHEMAS}SharedReportPage"}
    assert "token" not in spec["components"]["schemas"]["SharedReport"]["properties"]
