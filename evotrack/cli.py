"""The `evotrack` command line: `run`, `migrate`, `worker`, `projections`, `reset`.

Settings are loaded and validated before anything starts; a bad setting (for example a
default `SECRET_KEY` with `ENVIRONMENT=production`) is reported as one clear message.
A command that needs PostgreSQL or Redis and finds `DATABASE_URL` / `REDIS_URL` unset uses
the embedded servers of the `evotrack run` (`make run`) of its data directory, and says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from evotrack.errors import CliError, describe_settings_error
from evotrack.instance import RunState, running_state
from evotrack.migrations import redacted, upgrade_to_head
from evotrack.projections_cli import add_projections_parser
from evotrack.reset import reset_command
from evotrack.run import DEFAULT_REDIS_PORT, RunOptions, run
from shared.config import Settings, get_settings
from shared.logging import configure_logging
from worker.main import ROLES, run_worker

Command = Callable[[Settings, argparse.Namespace], int]


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise CliError(describe_settings_error(exc)) from None


# Settings field -> (its variable, the server it names).
SERVERS = {"database_url": ("DATABASE_URL", "PostgreSQL"), "redis_url": ("REDIS_URL", "Redis")}
DATABASE = ("database_url",)
DATABASE_AND_REDIS = ("database_url", "redis_url")


def with_running_servers(settings: Settings, needs: Sequence[str], data_dir: Path) -> Settings:
    """The settings, with the servers a command `needs` and finds unset taken from the
    running `evotrack run` of `data_dir`. A URL that is set always wins."""
    missing = [name for name in needs if not getattr(settings, name)]
    if not missing:
        return settings
    state, stale = running_state(data_dir)
    if state is None:
        raise CliError(nothing_runs(missing, data_dir, stale))
    for name in missing:
        os.environ[SERVERS[name][0]] = _embedded_url(state, name, data_dir)
    get_settings.cache_clear()
    return load_settings()


def _embedded_url(state: RunState, name: str, data_dir: Path) -> str:
    variable, server = SERVERS[name]
    url: str | None = getattr(state, name)
    run_name = f"the `evotrack run` of {data_dir.resolve()} (pid {state.pid})"
    if url is None:
        raise CliError(f"{variable} is not set, and {run_name} embeds no {server}: set {variable}")
    found = f"{variable} is not set: using the {server} of {run_name}: {url}"  # no password
    print(f"evotrack: {found}", file=sys.stderr)  # stderr: stdout may be --json
    return url


def nothing_runs(missing: Sequence[str], data_dir: Path, stale: RunState | None) -> str:
    variables = " / ".join(SERVERS[name][0] for name in missing)
    message = (
        f"no {variables} and no running `make run` found in {data_dir.resolve()}: start "
        f"`make run` (or `evotrack run`) in another terminal, or set {variables}"
    )
    if stale is not None:
        message += f" (its run.json is left over from a run that has ended, pid {stale.pid})"
    return message


def migrate_command(settings: Settings, _: argparse.Namespace) -> int:
    """Apply every migration to DATABASE_URL."""
    configure_logging(settings.log_level, json_format=settings.log_json)
    if not settings.database_url:
        raise CliError("DATABASE_URL is not set (`evotrack run` starts an embedded PostgreSQL)")
    try:
        upgrade_to_head(settings.database_url)
    except OperationalError as exc:
        raise CliError(f"cannot reach the database: {exc.orig}", exit_code=1) from None
    print(f"{redacted(settings.database_url)} is at the newest migration")
    return 0


def run_command(settings: Settings, args: argparse.Namespace) -> int:
    """Migrations, then the command API, the query API and the workers."""
    configure_logging(settings.log_level, json_format=settings.log_json)
    options = RunOptions(
        host=args.host,
        command_port=args.command_port,
        query_port=args.query_port,
        redis_port=args.redis_port,
        data_dir=args.data_dir,
        api_workers=args.api_workers or settings.api_workers,
        webhook_workers=settings.webhook_workers,
    )
    try:
        return run(settings, options)
    except OperationalError as exc:
        raise CliError(f"cannot reach the database: {exc.orig}", exit_code=1) from None


def worker_command(settings: Settings, args: argparse.Namespace) -> int:
    """An RQ worker on the wake-up and/or notifications queue, in the foreground."""
    if not settings.redis_url:
        raise CliError("REDIS_URL is not set")
    configure_logging(settings.log_level, json_format=settings.log_json)
    return run_worker(settings, burst=args.burst, role=args.role)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def data_dir_option() -> argparse.ArgumentParser:
    """`--data-dir`, shared by `run` and the commands that find a running `run` there."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".evotrack"),
        help="the data directory of `evotrack run` (default .evotrack): the embedded"
        " PostgreSQL and Redis keep their data there, and the other commands find them"
        " there when DATABASE_URL / REDIS_URL are not set",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evotrack", description="EvoTrack command line")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_dir = [data_dir_option()]

    migrate = commands.add_parser("migrate", parents=data_dir, help="apply the database migrations")
    migrate.set_defaults(handler=migrate_command, needs=DATABASE)

    run_parser = commands.add_parser(
        "run", parents=data_dir, help="run everything: migrations, both APIs and the workers"
    )
    run_parser.add_argument("--host", default="127.0.0.1")
    run_parser.add_argument("--command-port", type=int, default=8000)
    run_parser.add_argument("--query-port", type=int, default=8001)
    run_parser.add_argument(
        "--redis-port",
        type=int,
        default=DEFAULT_REDIS_PORT,
        help="port of the embedded Redis (a free one when taken)",
    )
    run_parser.add_argument(
        "--api-workers",
        type=_positive,
        default=None,
        help="processes per API (default: API_WORKERS, else the cores, at most 4)",
    )
    run_parser.set_defaults(handler=run_command)

    worker = commands.add_parser("worker", parents=data_dir, help="run a worker in the foreground")
    worker.add_argument(
        "--burst", action="store_true", help="exit once the queue is empty instead of waiting"
    )
    worker.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="projections: the wake-up queue and the sweeper; notifications: the"
        " notifications queue and its scheduler; webhooks: the webhooks queue and its"
        " scheduler; all (default): every one",
    )
    worker.set_defaults(handler=worker_command, needs=DATABASE_AND_REDIS)

    projections = add_projections_parser(commands, parents=data_dir)
    projections.set_defaults(needs=DATABASE)

    reset = commands.add_parser(
        "reset",
        parents=data_dir,
        help="delete the data of the embedded PostgreSQL and Redis (not while `run` uses them)",
    )
    reset.set_defaults(handler=reset_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        settings = with_running_servers(load_settings(), getattr(args, "needs", ()), args.data_dir)
        return handler(settings, args)
    except CliError as exc:
        print(f"evotrack: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
