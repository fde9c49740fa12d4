"""Blue/green rebuilds and verification of projections (DESIGN.md §4).

`rebuild` loads new tables with set-based SQL from one consistent snapshot, builds their
indexes after the load, swaps them in with renames in one transaction, and moves the
checkpoint back to the snapshot's xmin so that every change the snapshot may have missed
is applied again (applying is idempotent). Readers see the old tables until the commit,
then the new ones: never an empty or half-built table.

A projection whose plan has lanes (the entries) loads its first table in sessions of its
own (a part of it each) on the snapshot the swapping transaction exports, commits it, and
then loads the lanes (the tables derived from it, each lane in order) and indexes the first
table in parallel sessions, each committing its tables under their `__new` names; the
swapping transaction renames them all at once. A failed rebuild drops what it committed; a
crashed one leaves `__new` tables that the next rebuild replaces.

The swap never makes a read fail: it locks every live table up front, under a time limit
shorter than PostgreSQL's deadlock_timeout, and gives way to the readers when it cannot
(see `_swap_all`).

`verify` recomputes a projection from the normalized tables into temporary tables and
diffs them against the live ones.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from projections import catalog, entries, notifications
from projections.entries import Tables
from projections.registry import by_name
from projections.runner import advance, current_xmin, lock_projection

log = logging.getLogger(__name__)

NEW = "__new"
OLD = "__old"
VERIFY = "__verify"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Plan:
    tables: tuple[str, ...]
    statements: Callable[..., list[str]]
    scope_predicates: dict[str, str]
    # Tables after the first that parallel sessions may load, each lane in order once the
    # first table is committed; every table but the first is in exactly one lane.
    lanes: tuple[tuple[str, ...], ...] = ()
    # With lanes: the first table's load as statements over disjoint parts of it, which
    # parallel sessions run on the snapshot (its single statement when not given).
    first_parts: Callable[[Tables], list[str]] | None = None
    # The order readers read the tables in, where it matters: the swap locks them in it,
    # so that it queues behind such readers instead of closing a cycle with them.
    read_order: tuple[str, ...] = ()

    def scope(self, table: str) -> str:
        return self.scope_predicates.get(table, "org_id = ANY(:orgs)")

    @property
    def lock_order(self) -> tuple[str, ...]:
        return self.read_order or self.tables


PLANS: dict[str, Plan] = {
    catalog.NAME: Plan(catalog.TABLES, catalog.rebuild_statements, catalog.SCOPE_PREDICATES),
    entries.NAME: Plan(
        entries.TABLES,
        entries.rebuild_statements,
        entries.SCOPE_PREDICATES,
        entries.LANES,
        entries.entries_parts,
        # The detailed report and the dashboard read the roll-ups before the entries.
        read_order=(*entries.TABLES[1:], entries.TABLES[0]),
    ),
    notifications.NAME: Plan(
        notifications.TABLES, notifications.rebuild_statements, notifications.SCOPE_PREDICATES
    ),
}


# The most connections a rebuild holds at once: the swapping transaction, and then either
# the sessions loading the first table's parts or its index build and one session per
# lane. A session factory with a smaller pool would wait for its own connections.
CONNECTIONS = 1 + max(
    max(len(plan.first_parts(Tables())) if plan.first_parts else 1, 1 + len(plan.lanes))
    for plan in PLANS.values()
)


@dataclass
class RebuildResult:
    projection: str
    rows: dict[str, int]
    seconds: float
    snapshot_xmin: int


def _quiet(step: str, done: int, total: int) -> None:
    return None


def _indexes(session: Session, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that do not back a constraint."""
    rows = session.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i"
            " WHERE i.schemaname = current_schema() AND i.tablename = :t"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
            "   WHERE c.conname = i.indexname AND c.conrelid = CAST(:t AS regclass))"
        ),
        {"t": table},
    )
    return [(name, definition) for name, definition in rows]


def _constraints(session: Session, table: str) -> list[tuple[str, str]]:
    rows = session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u')"
        ),
        {"t": table},
    )
    return [(name, definition) for name, definition in rows]


def _create_empty(session: Session, live: str, new: str) -> None:
    """An empty copy of the live table: columns, defaults, checks and storage parameters
    (a fillfactor, say: LIKE does not copy those); indexes come after the load."""
    options = session.execute(
        text(
            "SELECT array_to_string(reloptions, ', ') FROM pg_class"
            " WHERE oid = CAST(:t AS regclass)"
        ),
        {"t": live},
    ).scalar_one()
    with_options = f" WITH ({options})" if options else ""
    session.execute(text(f"DROP TABLE IF EXISTS {new}"))
    session.execute(
        text(
            f"CREATE TABLE {new} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            f"{with_options}"
        )
    )


def _index_new(session: Session, live: str, new: str) -> None:
    for name, definition in _constraints(session, live):
        session.execute(text(f"ALTER TABLE {new} ADD CONSTRAINT {name}{NEW} {definition}"))
    for name, definition in _indexes(session, live):
        renamed = definition.replace(f"INDEX {name} ON", f"INDEX {name}{NEW} ON", 1)
        renamed, count = re.subn(rf" ON (ONLY )?(\w+\.)?{live} ", f" ON {new} ", renamed, count=1)
        if count != 1:
            raise RuntimeError(f"cannot retarget index definition: {definition}")
        session.execute(text(renamed))


# Why the swap's lock may fail: PostgreSQL chose the swap as a deadlock's victim, or the
# swap's own time limit ended its wait. Either way it gives way to the readers.
_GAVE_WAY = {"40P01": "deadlock", "57014": "time limit"}


def _swap_all(session: Session, name: str, plan: Plan) -> None:
    """Rename every `__new` table over the live one, giving way to readers until it can.

    A reader holds an ACCESS SHARE lock on each table it has read until its transaction
    ends; the renames need ACCESS EXCLUSIVE. Taken table by table, the swap would hold one
    while waiting for another, and a reader holding that other one and then asking for the
    first closes a deadlock, which PostgreSQL breaks by aborting the first of the two to
    have waited deadlock_timeout: often the reader, whose GET then failed. So every lock is
    taken in one statement cancelled after a quarter of deadlock_timeout. Before it the
    swapping transaction holds nothing a reader asks for, so a reader can only wait for the
    swap once that statement has begun: in any such cycle the swap gives up first, three
    quarters of deadlock_timeout ahead of the reader, releases what it took (the savepoint)
    and tries again a moment later, while the reader carries on."""
    limit_ms = _lock_limit_ms(session)
    attempt = 0
    while True:
        try:
            with session.begin_nested():
                _lock_live_tables(session, plan, limit_ms)
                for table in plan.tables:
                    _swap(session, f"proj_{table}")
            return
        except DBAPIError as exc:
            reason = _GAVE_WAY.get(str(getattr(exc.orig, "sqlstate", None)))
            if reason is None:
                raise
        attempt += 1
        if attempt % 10 == 1:
            log.warning("swap of %s gave way to readers (%s; attempt %d)", name, reason, attempt)
        # Random, so that the swap does not keep meeting the same readers at the same moment.
        time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))


def _lock_limit_ms(session: Session) -> int:
    """A quarter of the server's deadlock_timeout (1 s by default), at least 10 ms."""
    deadlock_ms = session.execute(
        text("SELECT setting::int FROM pg_settings WHERE name = 'deadlock_timeout'")
    ).scalar_one()
    return max(10, int(deadlock_ms) // 4)


def _lock_live_tables(session: Session, plan: Plan, limit_ms: int) -> None:
    """ACCESS EXCLUSIVE on every live table, in the readers' order, or a cancellation
    after `limit_ms`."""
    order = plan.lock_order
    previous = session.execute(text("SELECT current_setting('statement_timeout')")).scalar_one()
    session.execute(text(f"SET LOCAL statement_timeout = {int(limit_ms)}"))
    session.execute(
        text(f"LOCK TABLE {', '.join(f'proj_{t}' for t in order)} IN ACCESS EXCLUSIVE MODE")
    )
    session.execute(
        text("SELECT set_config('statement_timeout', :previous, true)"), {"previous": previous}
    )


def _swap(session: Session, live: str) -> None:
    constraints = _constraints(session, live)
    indexes = _indexes(session, live)
    session.execute(text(f"ALTER TABLE {live} RENAME TO {live}{OLD}"))
    session.execute(text(f"ALTER TABLE {live}{NEW} RENAME TO {live}"))
    session.execute(text(f"DROP TABLE {live}{OLD}"))
    for name, _ in constraints:
        session.execute(text(f"ALTER TABLE {live} RENAME CONSTRAINT {name}{NEW} TO {name}"))
    for name, _ in indexes:
        session.execute(text(f"ALTER INDEX {name}{NEW} RENAME TO {name}"))


def rebuild(
    session_factory: Callable[[], Session], name: str, progress: Progress = _quiet
) -> RebuildResult:
    """Rebuild one projection blue/green; writes keep flowing meanwhile.

    The snapshot is taken before the projection's lock is granted, so a runner that
    advanced the checkpoint in between makes the final checkpoint update a serialization
    failure: nothing was swapped then, and the rebuild simply starts again."""
    for attempt in range(1, 4):
        try:
            return _rebuild_once(session_factory, name, progress)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "40001" or attempt == 3:
                raise
    raise AssertionError("unreachable")


def _rebuild_once(
    session_factory: Callable[[], Session], name: str, progress: Progress
) -> RebuildResult:
    plan = PLANS[name]
    started = time.perf_counter()
    new = Tables(NEW)
    try:
        with session_factory() as session, session.begin():
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            xmin = current_xmin(session)
            lock_projection(session, name)
            if plan.lanes:
                snapshot = str(session.execute(text("SELECT pg_export_snapshot()")).scalar_one())
                rows = _load_in_lanes(session_factory, plan, new, snapshot, progress)
            else:
                rows = _load_here(session, plan, new, progress)
            _swap_all(session, name, plan)
            _restart_from(session, name, xmin)
            progress("swap", 1, 1)
    except BaseException:
        if plan.lanes:  # the lanes committed their tables; the swap (if any) rolled back
            _drop_new(session_factory, name, plan.tables, new)
        raise
    return RebuildResult(name, rows, time.perf_counter() - started, xmin)


def _load_here(session: Session, plan: Plan, new: Tables, progress: Progress) -> dict[str, int]:
    """Every table loaded, then indexed, in the swapping transaction itself."""
    rows: dict[str, int] = {}
    for table in plan.tables:
        _create_empty(session, f"proj_{table}", getattr(new, table))
    statements = plan.statements(new)
    steps = len(statements) * 2
    for step, (table, statement) in enumerate(zip(plan.tables, statements, strict=True)):
        progress(f"load {table}", step, steps)
        rows[table] = _load(session, statement)
    for step, table in enumerate(plan.tables):
        progress(f"index {table}", len(statements) + step, steps)
        _index_and_analyze(session, table, new)
    return rows


def _load_in_lanes(
    session_factory: Callable[[], Session],
    plan: Plan,
    new: Tables,
    snapshot: str,
    progress: Progress,
) -> dict[str, int]:
    """The first table from the normalized tables on the exported snapshot (its parts in
    parallel sessions), committed; then its indexes and each lane of derived tables in
    parallel sessions (PostgreSQL runs each session on a core of its own). Every table is
    committed under its `__new` name."""
    statements = dict(zip(plan.tables, plan.statements(new), strict=True))
    first = plan.tables[0]
    parts = plan.first_parts(new) if plan.first_parts else [statements[first]]
    steps = _StepCounter(progress, len(plan.tables) * 2)
    with session_factory() as session, session.begin():
        steps.start(f"load {first}")
        _create_empty(session, f"proj_{first}", getattr(new, first))

    def load_part(statement: str) -> int:
        with session_factory() as session, session.begin():
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            return _load(session, statement)

    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        rows = {first: sum(pool.map(load_part, parts))}

    def index_first() -> dict[str, int]:
        with session_factory() as session, session.begin():
            steps.start(f"index {first}")
            _index_and_analyze(session, first, new)
        return {}

    def load_lane(lane: Sequence[str]) -> dict[str, int]:
        counted: dict[str, int] = {}
        with session_factory() as session, session.begin():
            for table in lane:
                steps.start(f"load {table}")
                _create_empty(session, f"proj_{table}", getattr(new, table))
                counted[table] = _load(session, statements[table])
            for table in lane:
                steps.start(f"index {table}")
                _index_and_analyze(session, table, new)
        return counted

    # Leaving the block waits for every session, so a failure is raised once all are done.
    with ThreadPoolExecutor(max_workers=len(plan.lanes) + 1) as pool:
        futures = [pool.submit(index_first)]
        futures += [pool.submit(load_lane, lane) for lane in plan.lanes]
        for future in futures:
            rows.update(future.result())
    return rows


class _StepCounter:
    """Progress from several sessions at once: one count, one report at a time."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.lock = threading.Lock()

    def start(self, step: str) -> None:
        with self.lock:
            self.progress(step, self.done, self.total)
            self.done += 1


def _load(session: Session, statement: str) -> int:
    result = session.execute(text(statement))
    return int(getattr(result, "rowcount", 0) or 0)


def _index_and_analyze(session: Session, table: str, new: Tables) -> None:
    _index_new(session, f"proj_{table}", getattr(new, table))
    session.execute(text(f"ANALYZE {getattr(new, table)}"))


def _drop_new(
    session_factory: Callable[[], Session], name: str, tables: Sequence[str], new: Tables
) -> None:
    """Drop the `__new` tables a failed rebuild committed, under the projection's lock (so
    never those of a rebuild started since), each on its own: best effort, as the next
    rebuild replaces what this leaves."""
    try:
        with session_factory() as session, session.begin():
            lock_projection(session, name)
            for table in tables:
                try:
                    with session.begin_nested():
                        session.execute(text(f"DROP TABLE IF EXISTS {getattr(new, table)}"))
                except SQLAlchemyError:
                    log.warning("could not drop %s after a failed rebuild", getattr(new, table))
    except SQLAlchemyError:
        log.warning("could not drop the tables of a failed rebuild of %s", name, exc_info=True)


def _restart_from(session: Session, name: str, xmin: int) -> None:
    """Re-apply every change from transactions the snapshot may not have seen."""
    session.execute(
        text("INSERT INTO projection_checkpoints (name) VALUES (:n) ON CONFLICT DO NOTHING"),
        {"n": name},
    )
    session.execute(
        text(
            "UPDATE projection_checkpoints SET tx = CAST(:x AS xid8), change_id = 0,"
            " watermark = GREATEST(watermark, CAST(:x AS xid8)), updated_at = now()"
            " WHERE name = :n"
        ),
        {"n": name, "x": str(xmin)},
    )


@dataclass
class TableDiff:
    table: str
    missing: int  # rows a rebuild has that the live table lacks
    unexpected: int  # rows the live table has that a rebuild lacks
    samples: list[str] = field(default_factory=list)


@dataclass
class VerifyResult:
    projection: str
    diffs: list[TableDiff]

    @property
    def ok(self) -> bool:
        return not self.diffs


def _diff(
    session: Session, table: str, sample: int, scope: str, params: dict[str, Any]
) -> TableDiff | None:
    live, expected = f"proj_{table}", f"proj_{table}{VERIFY}"
    live_rows = f"SELECT * FROM {live} WHERE {scope}"
    missing_result = session.execute(
        text(f"SELECT * FROM {expected} EXCEPT ALL {live_rows}"), params
    )
    columns = list(missing_result.keys())
    missing = missing_result.all()
    unexpected = session.execute(
        text(f"{live_rows} EXCEPT ALL SELECT * FROM {expected}"), params
    ).all()
    if not missing and not unexpected:
        return None

    def show(row: Any) -> str:
        return ", ".join(f"{column}={value}" for column, value in zip(columns, row, strict=True))

    samples = [f"missing    {show(r)}" for r in missing[:sample]]
    samples += [f"unexpected {show(r)}" for r in unexpected[:sample]]
    return TableDiff(table, len(missing), len(unexpected), samples)


def _pending_changes(session: Session, name: str) -> int:
    return int(
        session.execute(
            text(
                "SELECT count(*) FROM changes c, projection_checkpoints p"
                " WHERE p.name = :n AND (c.tx, c.id) > (p.tx, p.change_id)"
            ),
            {"n": name},
        ).scalar_one()
    )


def verify(
    session_factory: Callable[[], Session],
    name: str,
    *,
    org_ids: list[Any] | None = None,
    attempts: int = 5,
    sample: int = 5,
) -> VerifyResult:
    """Diff the live projection against a recomputation from the normalized tables
    (of every organization, or of `org_ids` only).

    The projection is first advanced to the watermark; when writes land meanwhile the
    comparison is retried, so a difference reported is a real one.
    """
    plan = PLANS[name]
    check = _Check(name, plan, sample, org_ids)
    for _ in range(attempts):
        advance(session_factory, by_name(name))
        result = check.run(session_factory)
        if result is not None:
            return result
        time.sleep(0.2)
    return check.run(session_factory, force=True) or VerifyResult(name, [])


@dataclass
class _Check:
    name: str
    plan: Plan
    sample: int
    org_ids: list[Any] | None

    def run(
        self, session_factory: Callable[[], Session], *, force: bool = False
    ) -> VerifyResult | None:
        scoped = self.org_ids is not None
        params: dict[str, Any] = {"orgs": list(self.org_ids or [])}
        with session_factory() as session, session.begin():
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            if _pending_changes(session, self.name) and not force:
                return None
            verify_tables = Tables(VERIFY)
            for table in self.plan.tables:
                session.execute(
                    text(
                        f"CREATE TEMP TABLE {getattr(verify_tables, table)}"
                        f" (LIKE proj_{table}) ON COMMIT DROP"
                    )
                )
            for statement in self.plan.statements(verify_tables, scoped=scoped):
                session.execute(text(statement), params)
            diffs = [
                diff
                for table in self.plan.tables
                if (
                    diff := _diff(
                        session,
                        table,
                        self.sample,
                        self.plan.scope(table) if scoped else "true",
                        params,
                    )
                )
                is not None
            ]
            session.rollback()
        return VerifyResult(self.name, diffs)


def summary(results: list[Any]) -> str:
    return ", ".join(f"{r.projection}: {'ok' if r.ok else 'DIFFERS'}" for r in results)
