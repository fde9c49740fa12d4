"""The import rules of DESIGN.md §1, and "only entry points commit", checked on the source."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_files(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def imported_modules(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def violations(
    package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    found = []
    for path in python_files(package):
        for module in imported_modules(path):
            hit = any(module == f or module.startswith(f + ".") for f in forbidden)
            exempt = any(module == a or module.startswith(a + ".") for a in allowed)
            if hit and not exempt:
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


def test_query_api_reads_only_shared_and_projection_models() -> None:
    assert (
        violations(
            "query_api",
            ("command_api", "worker", "projections", "evotrack"),
            ("projections.models",),
        )
        == []
    )


def test_command_api_never_imports_the_read_side_or_the_worker() -> None:
    assert violations("command_api", ("query_api", "projections", "worker", "evotrack")) == []


def _names_models(module: str) -> bool:
    """`command_api.models` or `command_api.modules.<context>.models`, or a name in one."""
    parts = module.split(".")
    return parts[1:2] == ["models"] or (parts[1:2] == ["modules"] and parts[3:4] == ["models"])


@pytest.mark.parametrize("package", ["projections", "worker"])
def test_projections_and_the_worker_use_only_the_command_sides_models(package: str) -> None:
    """They read and write the normalized tables, whose ORM models live in command_api;
    nothing else of the command side (DESIGN.md §1 and §10). Contracts they share with it
    live in shared/ (changes, notifications)."""
    found = [
        v
        for v in violations(package, ("command_api", "query_api"))
        if not _names_models(v.split(" imports ")[1])
    ]
    assert found == []
    # The rule itself tells a model from a schema.
    assert _names_models("command_api.modules.users.models.User")
    assert not _names_models("command_api.modules.notifications.schemas.NotificationDraft")


def test_a_command_module_uses_other_modules_services_never_their_repositories() -> None:
    found = []
    for path in python_files("command_api/modules"):
        own = path.relative_to(ROOT / "command_api/modules").parts[0]
        for module in imported_modules(path):
            parts = module.split(".")
            is_module = parts[:2] == ["command_api", "modules"] and len(parts) >= 4
            if is_module and parts[2] != own and parts[3] == "repository":
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    assert found == []


def _commit_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
    ]


@pytest.mark.parametrize("package", ["command_api", "projections", "query_api"])
def test_no_service_or_repository_commits(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in python_files(package)
        if path.name in {"service.py", "repository.py", "queries.py"}
        or path.parent.name == "services"
        for line in _commit_calls(path)
    ]
    assert found == []


def test_the_checks_see_real_code() -> None:
    # Guard against the rules above passing because they look at nothing.
    assert any(True for _ in python_files("command_api/modules"))
    assert "command_api.transaction" in set(
        imported_modules(ROOT / "command_api/modules/auth/dependencies.py")
    )
    assert _commit_calls(ROOT / "command_api/transaction.py")


NORMALIZED_TABLES = (
    "users",
    "api_tokens",
    "refresh_tokens",
    "organizations",
    "memberships",
    "teams",
    "team_members",
    "clients",
    "projects",
    "project_members",
    "tasks",
    "tags",
    "time_entries",
    "time_entry_tags",
    "idempotency_keys",
    "notification_settings",
    "notifications",
)


def test_query_api_sql_names_no_normalized_table() -> None:
    pattern = re.compile(
        r"\b(?:FROM|JOIN|INTO|UPDATE)\s+(" + "|".join(NORMALIZED_TABLES) + r")\b", re.IGNORECASE
    )
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in python_files("query_api")
        for match in pattern.finditer(path.read_text())
    ]
    assert found == []
    # The pattern itself catches what it should.
    assert pattern.search("SELECT 1 FROM time_entries e")
    assert not pattern.search("SELECT 1 FROM proj_entries e")
