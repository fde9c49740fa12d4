"""The import rules of DESIGN.md §1, no import cycles, and "only entry points commit",
checked on every file of the source; each check is also shown to catch a planted
violation."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "command_api",
    "query_api",
    "projections",
    "notifications",
    "webhooks",
    "importers",
    "worker",
    "shared",
    "evotrack",
    "bench",
)
# The one place a session commits; everything else runs in `engine.begin()` blocks.
COMMITTING_ENTRY_POINTS = ("command_api/transaction.py",)


def python_files(package: str, root: Path = ROOT) -> Iterator[Path]:
    yield from sorted((root / package).rglob("*.py"))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Every module `path` imports, anywhere in it (under TYPE_CHECKING and in functions
    too: an import that only a guard keeps from cycling is a cycle all the same), relative
    imports resolved; for `from m import n`, both `m` and `m.n`."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, path, root)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def _absolute(node: ast.ImportFrom, path: Path, root: Path) -> str:
    if node.level == 0:
        return node.module or ""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def violations(
    package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = (), root: Path = ROOT
) -> list[str]:
    found = []
    for path in python_files(package, root):
        for module in imported_modules(path, root):
            hit = any(module == f or module.startswith(f + ".") for f in forbidden)
            exempt = any(module == a or module.startswith(a + ".") for a in allowed)
            if hit and not exempt:
                found.append(f"{path.relative_to(root)} imports {module}")
    return found


def import_cycles(packages: tuple[str, ...], root: Path = ROOT) -> list[list[str]]:
    """The groups of our modules that import each other, directly or around a loop
    (strongly connected components of the import graph, Tarjan's algorithm)."""
    modules = {module_name(path, root): path for p in packages for path in python_files(p, root)}
    graph = {name: _imports_among(path, name, modules, root) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = [stack.pop()]
            while group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return cycles


def _imports_among(path: Path, name: str, modules: dict[str, Path], root: Path) -> set[str]:
    """The modules of ours that `path` imports (a name inside a module counts as the
    module; a package's __init__ importing its own modules is no cycle)."""
    found = set()
    for imported in imported_modules(path, root):
        while imported and imported not in modules:
            imported = imported.rpartition(".")[0]
        if imported and imported != name:
            found.add(imported)
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
    assert (
        violations(
            "command_api",
            ("query_api", "projections", "notifications", "webhooks", "worker", "evotrack"),
        )
        == []
    )


def test_shared_imports_no_other_package() -> None:
    others = tuple(p for p in PACKAGES if p != "shared")
    assert violations("shared", others) == []


def test_projections_and_the_services_never_import_the_processes() -> None:
    """The worker and the CLI compose them; they never reach back."""
    assert violations("projections", ("query_api", "worker", "evotrack")) == []
    assert violations("notifications", ("query_api", "projections", "worker", "evotrack")) == []
    assert violations("webhooks", ("query_api", "projections", "worker", "evotrack")) == []


def test_the_importers_parsing_stands_alone() -> None:
    """Reading an export's rows needs nothing of the product: it is tested on files alone."""
    others = tuple(p for p in PACKAGES if p not in ("importers", "shared"))
    assert violations("importers", others) == []


def _names_models(module: str) -> bool:
    """`command_api.models` or `command_api.modules.<context>.models`, or a name in one."""
    parts = module.split(".")
    if parts[0] != "command_api":
        return False
    return parts[1:2] == ["models"] or (parts[1:2] == ["modules"] and parts[3:4] == ["models"])


@pytest.mark.parametrize("package", ["projections", "notifications", "webhooks", "worker"])
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


def commits_outside_entry_points(packages: tuple[str, ...], root: Path = ROOT) -> list[str]:
    return [
        f"{path.relative_to(root)}:{line}"
        for package in packages
        for path in python_files(package, root)
        if str(path.relative_to(root)) not in COMMITTING_ENTRY_POINTS
        for line in _commit_calls(path)
    ]


def test_only_the_entry_points_commit() -> None:
    """Services, repositories, queries, projections and jobs never end a transaction
    (STYLE.md 3): the request's unit of work does, or an `engine.begin()` block."""
    product = tuple(p for p in PACKAGES if p != "bench")  # each benchmark is an entry point
    assert commits_outside_entry_points(product) == []


def test_no_module_imports_itself_around_a_loop() -> None:
    assert import_cycles(PACKAGES) == []


def test_the_checks_see_real_code() -> None:
    # Guard against the rules above passing because they look at nothing.
    assert any(True for _ in python_files("command_api/modules"))
    assert "command_api.transaction" in set(
        imported_modules(ROOT / "command_api/modules/auth/dependencies.py")
    )
    assert _commit_calls(ROOT / "command_api/transaction.py")


def _plant(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_each_check_catches_a_planted_violation(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "command_api/__init__.py": "",
            "command_api/modules/__init__.py": "",
            "command_api/modules/a/__init__.py": "",
            # A cycle hidden behind TYPE_CHECKING, through a relative import.
            "command_api/modules/a/service.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .dependencies import Context\n",
            "command_api/modules/a/dependencies.py": "from command_api.modules.a import service\n"
            "from query_api.reports import summary\n",
            "projections/__init__.py": "",
            "projections/entries.py": "from command_api.modules.a.schemas import Draft\n"
            "def apply(session):\n    session.commit()\n",
        },
    )
    assert import_cycles(("command_api", "projections"), tmp_path) == [
        ["command_api.modules.a.dependencies", "command_api.modules.a.service"]
    ]
    assert violations("command_api", ("query_api",), root=tmp_path) == [
        "command_api/modules/a/dependencies.py imports query_api.reports",
        "command_api/modules/a/dependencies.py imports query_api.reports.summary",
    ]
    assert commits_outside_entry_points(("command_api", "projections"), tmp_path) == [
        "projections/entries.py:3"
    ]
    forbidden = violations("projections", ("command_api",), root=tmp_path)
    assert [v for v in forbidden if not _names_models(v.split(" imports ")[1])] == forbidden


def _model_names(tree: ast.AST) -> set[str]:
    """The names a module imports from the command side's models."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and _names_models(node.module)
        for alias in node.names
    }


def _called(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    return node.func.attr if isinstance(node.func, ast.Attribute) else None


def _target(node: ast.Call) -> str | None:
    """`X` of `insert(X)`, `insert(X.__table__)`."""
    if not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Attribute):
        first = first.value
    return first.id if isinstance(first, ast.Name) else None


def write_side_writes(package: str, root: Path = ROOT) -> list[str]:
    """Statements of `package` that write a normalized table or the change log: Core
    `insert/update/delete` of a command-side model, `record_changes`, or SQL text."""
    sql = re.compile(
        r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+("
        + "|".join((*NORMALIZED_TABLES, "changes"))
        + r")\b",
        re.IGNORECASE,
    )
    found = []
    for path in python_files(package, root):
        source = path.read_text()
        tree = ast.parse(source, str(path))
        models = _model_names(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _called(node)
            writes_model = name in ("insert", "update", "delete") and _target(node) in models
            if writes_model or name in ("record_changes", "record_change"):
                found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
        found += [f"{path.relative_to(root)}: {m.group(0)}" for m in sql.finditer(source)]
    return sorted(found)


def test_projections_write_only_read_models() -> None:
    """Side effects on the write side go through the service of the domain that owns them
    (DESIGN.md §10): a projection writes its own tables and nothing else."""
    assert write_side_writes("projections") == []


def test_the_write_check_catches_a_planted_write(tmp_path: Path) -> None:
    _plant(
        tmp_path,
        {
            "projections/__init__.py": "",
            "projections/inbox.py": "from command_api.modules.n.models import Notification\n"
            "from shared.changes import record_changes\n"
            "def apply(session, rows):\n"
            "    session.execute(insert(Notification).values(rows))\n"
            "    session.execute(insert(proj_notifications).values(rows))\n"
            "    record_changes(session, [])\n"
            "    session.execute(text('DELETE FROM notifications WHERE id = :id'))\n"
            "    session.execute(text('DELETE FROM proj_notifications WHERE id = :id'))\n",
        },
    )
    assert write_side_writes("projections", tmp_path) == [
        "projections/inbox.py: DELETE FROM notifications",
        "projections/inbox.py:4 insert",
        "projections/inbox.py:6 record_changes",
    ]


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
