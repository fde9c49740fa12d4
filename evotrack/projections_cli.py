"""`evotrack projections status | rebuild | verify | retry` (DESIGN.md §4).

Each command is an entry point: it opens its own sessions on DATABASE_URL and owns its
transactions. The projections' own functions never commit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from evotrack.errors import CliError
from projections.rebuild import TableDiff, VerifyResult, rebuild, verify
from projections.registry import PROJECTIONS, by_name
from projections.runner import AdvanceResult, advance
from projections.status import ProjectionStatus, projection_status, retry_dead_letters
from shared.config import Settings
from shared.db import write_sessionmaker
from shared.logging import configure_logging

SessionFactory = Callable[[], Session]
ERROR_WIDTH = 60


# --- plumbing ----------------------------------------------------------------------------


def session_factory(settings: Settings) -> SessionFactory:
    """Sessions on DATABASE_URL; logs (dead letters, retries) go to stderr, in the LOG_JSON
    format like every log line (the command's answer goes to stdout, as plain text)."""
    if not settings.database_url:
        raise CliError("DATABASE_URL is not set")
    configure_logging(settings.log_level, json_format=settings.log_json)
    return write_sessionmaker()


@contextmanager
def reported_database_errors() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise CliError(f"cannot reach the database: {exc.orig}", exit_code=1) from None


def selected(name: str | None) -> list[str]:
    """The named projection, or every projection in registry (rebuild) order."""
    if name is None:
        return [p.name for p in PROJECTIONS]
    try:
        return [by_name(name).name]
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None


def catch_up(factory: SessionFactory, name: str) -> str:
    """Advance a projection to the watermark and say what happened."""
    result: AdvanceResult = advance(factory, by_name(name))
    if result.locked_elsewhere:
        return f"{name}: a worker holds the projection and catches it up"
    dead = f", {result.dead_lettered} dead-lettered" if result.dead_lettered else ""
    return f"{name}: caught up, {result.applied} changes applied{dead}"


# --- status ------------------------------------------------------------------------------


def _truncated(text: str | None, width: int = ERROR_WIDTH) -> str:
    if not text:
        return "-"
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def status_row(status: ProjectionStatus) -> list[str]:
    return [
        status.name,
        f"{status.checkpoint_tx}:{status.checkpoint_change_id}",
        str(status.applied_watermark),
        str(status.watermark),
        str(status.lag_changes),
        f"{status.lag_seconds:.1f}",
        str(status.dead_letters),
        _truncated(status.last_error),
    ]


STATUS_HEADER = [
    "PROJECTION",
    "CHECKPOINT",
    "APPLIED WM",
    "WATERMARK",
    "LAG",
    "LAG S",
    "DEAD",
    "LAST ERROR",
]


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def status_json(status: ProjectionStatus) -> dict[str, Any]:
    data = status.as_dict()
    for key in ("last_error_at", "updated_at"):
        data[key] = data[key].isoformat() if data[key] is not None else None
    return data


def status_command(settings: Settings, args: argparse.Namespace) -> int:
    """Checkpoint, watermarks, lag, dead letters and last error of every projection."""
    factory = session_factory(settings)
    with reported_database_errors(), factory() as session:
        statuses = projection_status(session)
    if args.json:
        print(json.dumps([status_json(s) for s in statuses], indent=2))
    else:
        print(format_table(STATUS_HEADER, [status_row(s) for s in statuses]))
    return 0


# --- rebuild -----------------------------------------------------------------------------


class ProgressBar:
    """A text bar on `stream`: redrawn in place on a terminal, one line per step otherwise."""

    def __init__(self, label: str, stream: TextIO, width: int = 24) -> None:
        self.label = label
        self.stream = stream
        self.width = width
        self.interactive = stream.isatty()
        self.started = time.perf_counter()
        self.drawn = 0

    def __call__(self, step: str, done: int, total: int) -> None:
        filled = self.width * done // total if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self.started
        line = f"{self.label} [{bar}] {done}/{total} {step} ({elapsed:.1f}s)"
        if self.interactive:
            self.stream.write("\r" + line.ljust(self.drawn))
            self.drawn = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def rebuild_one(factory: SessionFactory, name: str) -> None:
    bar = ProgressBar(f"rebuild {name}", sys.stderr)
    try:
        result = rebuild(factory, name, bar)
    except KeyboardInterrupt:
        raise CliError(f"rebuild of {name} interrupted: nothing was swapped", 130) from None
    finally:
        bar.close()
    rows = [[table, str(count)] for table, count in result.rows.items()]
    print(f"{name}: rebuilt in {result.seconds:.2f}s from snapshot xmin {result.snapshot_xmin}")
    print(format_table(["TABLE", "ROWS"], rows))
    print(catch_up(factory, name) + " since the snapshot")


def rebuild_command(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild blue/green, swap, then catch up from the snapshot's watermark."""
    names = selected(args.name)
    factory = session_factory(settings)
    with reported_database_errors():
        for name in names:
            rebuild_one(factory, name)
    return 0


# --- verify ------------------------------------------------------------------------------


def describe_diff(diff: TableDiff) -> list[str]:
    lines = [f"  {diff.table}: {diff.missing} missing, {diff.unexpected} unexpected"]
    return lines + [f"    {sample}" for sample in diff.samples]


def describe_verify(result: VerifyResult) -> str:
    if result.ok:
        return f"{result.projection}: ok"
    lines = [f"{result.projection}: DIFFERS"]
    for diff in result.diffs:
        lines += describe_diff(diff)
    return "\n".join(lines)


def verify_command(settings: Settings, args: argparse.Namespace) -> int:
    """Recompute from the normalized tables and diff; exit 1 when any table differs."""
    names = selected(args.name)
    factory = session_factory(settings)
    org_ids: list[Any] | None = list(args.org) if args.org else None
    consistent = True
    with reported_database_errors():
        for name in names:
            result = verify(factory, name, org_ids=org_ids)
            print(describe_verify(result))
            consistent = consistent and result.ok
    return 0 if consistent else 1


# --- retry -------------------------------------------------------------------------------


def retry_command(settings: Settings, args: argparse.Namespace) -> int:
    """Replay open dead letters in one transaction, then advance the projections."""
    names = selected(args.name)
    factory = session_factory(settings)
    with reported_database_errors():
        with factory() as session, session.begin():
            resolved = retry_dead_letters(session, args.name)
            still_failing = sum(s.dead_letters for s in projection_status(session, names))
        print(f"{resolved} dead letters resolved, {still_failing} still failing")
        for name in names:
            print(catch_up(factory, name))
    return 1 if still_failing else 0


# --- parser ------------------------------------------------------------------------------


def add_projections_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `projections` and its subcommands (each with the `parents`' options) on the
    top-level subparsers."""
    parser = commands.add_parser("projections", help="inspect, rebuild, verify projections")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    known = ", ".join(p.name for p in PROJECTIONS)

    status = actions.add_parser(
        "status", parents=parents, help="checkpoint, lag, dead letters per projection"
    )
    status.add_argument("--json", action="store_true", help="machine-readable, full errors")
    status.set_defaults(handler=status_command)

    rebuild_parser = actions.add_parser(
        "rebuild", parents=parents, help="rebuild from the normalized tables"
    )
    rebuild_parser.add_argument("name", nargs="?", help=f"one of {known}; all when omitted")
    rebuild_parser.set_defaults(handler=rebuild_command)

    verify_parser = actions.add_parser(
        "verify", parents=parents, help="diff against a recomputation"
    )
    verify_parser.add_argument("name", nargs="?", help=f"one of {known}; all when omitted")
    verify_parser.add_argument(
        "--org",
        type=uuid.UUID,
        action="append",
        metavar="ORG_ID",
        help="only these organizations (repeatable)",
    )
    verify_parser.set_defaults(handler=verify_command)

    retry = actions.add_parser(
        "retry",
        parents=parents,
        help="replay dead-lettered changes (exit 1 when some still fail)",
    )
    retry.add_argument("name", nargs="?", help=f"one of {known}; all when omitted")
    retry.set_defaults(handler=retry_command)
    return parser
