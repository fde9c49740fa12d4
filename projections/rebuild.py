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

What a projection declares (its tables, their loads, its plan) is Core. The DDL around it
is text: Core has no statement for copying a table (`CREATE TABLE … LIKE`), renaming one,
locking several at once, `ANALYZE`, or joining an exported snapshot.
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

from sqlalchemy import Executable, Integer, Table, cast, column, func, literal, select, table, text
from sqlalchemy.dialects.postgresql import REGCLASS
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.schema import DropTable

from projections.projection import LIVE, ORGS, PRESERVE_ROWCOUNT, Projection, Tables
from projections.registry import PROJECTIONS, by_name
from projections.runner import (
    advance,
    current_xmin,
    lock_projection,
    pending_changes,
    restart_checkpoint,
)

log = logging.getLogger(__name__)

NEW = Tables("__new")
VERIFY = Tables("__verify")
OLD = Tables("__old")

Progress = Callable[[str, int, int], None]
SessionFactory = Callable[[], Session]

# The most connections a rebuild holds at once: the swapping transaction, and then either
# the sessions loading the first table's parts or its index build and one session per
# lane. A session factory with a smaller pool would wait for its own connections.
CONNECTIONS = 1 + max(
    max(p.plan.first_parts if p.plan.lanes else 1, 1 + len(p.plan.lanes)) for p in PROJECTIONS
)


@dataclass
class RebuildResult:
    projection: str
    rows: dict[str, int]  # by table name
    seconds: float
    snapshot_xmin: int


def _quiet(step: str, done: int, total: int) -> None:
    return None


def _repeatable_read(session: Session) -> None:
    """The transaction's snapshot holds for all its statements (called before the first)."""
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


# --- Copies of the live tables ---------------------------------------------------------------

# The system catalogs a copy's indexes and constraints are read from.
_pg_indexes = table(
    "pg_indexes",
    column("schemaname"),
    column("tablename"),
    column("indexname"),
    column("indexdef"),
)
_pg_constraint = table(
    "pg_constraint", column("oid"), column("conname"), column("conrelid"), column("contype")
)
_pg_class = table("pg_class", column("oid"), column("reloptions"))
_pg_settings = table("pg_settings", column("name"), column("setting"))


def _oid(name: str) -> Any:
    return cast(literal(name), REGCLASS)


def _indexes(session: Session, name: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that do not back a constraint: the live
    table's own, so a copy gets exactly what the migrations made."""
    backs_constraint = (
        select(_pg_constraint.c.conname)
        .where(
            _pg_constraint.c.conname == _pg_indexes.c.indexname,
            _pg_constraint.c.conrelid == _oid(name),
        )
        .exists()
    )
    rows = session.execute(
        select(_pg_indexes.c.indexname, _pg_indexes.c.indexdef).where(
            _pg_indexes.c.schemaname == func.current_schema(),
            _pg_indexes.c.tablename == name,
            ~backs_constraint,
        )
    )
    return [(index, definition) for index, definition in rows]


def _constraints(session: Session, name: str) -> list[tuple[str, str]]:
    rows = session.execute(
        select(_pg_constraint.c.conname, func.pg_get_constraintdef(_pg_constraint.c.oid)).where(
            _pg_constraint.c.conrelid == _oid(name), _pg_constraint.c.contype.in_(("p", "u"))
        )
    )
    return [(constraint, definition) for constraint, definition in rows]


def _create_empty(session: Session, live: Table, new: Table) -> None:
    """An empty copy of the live table: columns, defaults, checks and storage parameters
    (a fillfactor, say: LIKE does not copy those); indexes come after the load."""
    options = session.execute(
        select(func.array_to_string(_pg_class.c.reloptions, ", ")).where(
            _pg_class.c.oid == _oid(live.name)
        )
    ).scalar_one()
    with_options = f" WITH ({options})" if options else ""
    session.execute(DropTable(new, if_exists=True))
    session.execute(
        text(
            f"CREATE TABLE {new.name} (LIKE {live.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            f"{with_options}"
        )
    )


def _index_new(session: Session, live: Table, new: Table) -> None:
    for name, definition in _constraints(session, live.name):
        session.execute(text(f"ALTER TABLE {new.name} ADD CONSTRAINT {name}__new {definition}"))
    for name, definition in _indexes(session, live.name):
        renamed = definition.replace(f"INDEX {name} ON", f"INDEX {name}__new ON", 1)
        renamed, count = re.subn(
            rf" ON (ONLY )?(\w+\.)?{live.name} ", f" ON {new.name} ", renamed, count=1
        )
        if count != 1:
            raise RuntimeError(f"cannot retarget index definition: {definition}")
        session.execute(text(renamed))


def _index_and_analyze(session: Session, live: Table) -> None:
    _index_new(session, live, NEW[live])
    session.execute(text(f"ANALYZE {NEW[live].name}"))


def _load(session: Session, statement: Executable) -> int:
    result = session.execute(statement, execution_options=PRESERVE_ROWCOUNT)
    return int(getattr(result, "rowcount", 0) or 0)


# --- The swap ----------------------------------------------------------------------------------

# Why the swap's lock may fail: PostgreSQL chose the swap as a deadlock's victim, or the
# swap's own time limit ended its wait. Either way it gives way to the readers.
_GAVE_WAY = {"40P01": "deadlock", "57014": "time limit"}


def _swap_all(session: Session, projection: Projection) -> None:
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
                _lock_live_tables(session, projection.lock_order, limit_ms)
                for live in projection.tables:
                    _swap(session, live)
            return
        except DBAPIError as exc:
            reason = _GAVE_WAY.get(str(getattr(exc.orig, "sqlstate", None)))
            if reason is None:
                raise
        attempt += 1
        if attempt % 10 == 1:
            log.warning(
                "swap of %s gave way to readers (%s; attempt %d)", projection.name, reason, attempt
            )
        # Random, so that the swap does not keep meeting the same readers at the same moment.
        time.sleep(random.uniform(0, min(1.0, 0.02 * 2**attempt)))


def _lock_limit_ms(session: Session) -> int:
    """A quarter of the server's deadlock_timeout (1 s by default), at least 10 ms."""
    deadlock_ms = session.execute(
        select(cast(_pg_settings.c.setting, Integer)).where(
            _pg_settings.c.name == "deadlock_timeout"
        )
    ).scalar_one()
    return max(10, int(deadlock_ms) // 4)


def _set_statement_timeout(session: Session, value: str) -> None:
    session.execute(select(func.set_config("statement_timeout", value, True)))


def _lock_live_tables(session: Session, order: Sequence[Table], limit_ms: int) -> None:
    """ACCESS EXCLUSIVE on every live table, in the readers' order, or a cancellation
    after `limit_ms`."""
    previous = session.execute(select(func.current_setting("statement_timeout"))).scalar_one()
    _set_statement_timeout(session, str(int(limit_ms)))
    names = ", ".join(live.name for live in order)
    session.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
    _set_statement_timeout(session, str(previous))


def _swap(session: Session, live: Table) -> None:
    constraints = _constraints(session, live.name)
    indexes = _indexes(session, live.name)
    session.execute(text(f"ALTER TABLE {live.name} RENAME TO {OLD[live].name}"))
    session.execute(text(f"ALTER TABLE {NEW[live].name} RENAME TO {live.name}"))
    session.execute(DropTable(OLD[live]))
    for name, _ in constraints:
        session.execute(text(f"ALTER TABLE {live.name} RENAME CONSTRAINT {name}__new TO {name}"))
    for name, _ in indexes:
        session.execute(text(f"ALTER INDEX {name}__new RENAME TO {name}"))


# --- Rebuild -----------------------------------------------------------------------------------


def rebuild(
    session_factory: SessionFactory, name: str, progress: Progress = _quiet
) -> RebuildResult:
    """Rebuild one projection blue/green; writes keep flowing meanwhile.

    The snapshot is taken before the projection's lock is granted, so a runner that
    advanced the checkpoint in between makes the final checkpoint update a serialization
    failure: nothing was swapped then, and the rebuild simply starts again."""
    for attempt in range(1, 4):
        try:
            return _rebuild_once(session_factory, by_name(name), progress)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "40001" or attempt == 3:
                raise
    raise AssertionError("unreachable")


def _rebuild_once(
    session_factory: SessionFactory, projection: Projection, progress: Progress
) -> RebuildResult:
    started = time.perf_counter()
    try:
        with session_factory() as session, session.begin():
            _repeatable_read(session)
            xmin = current_xmin(session)
            lock_projection(session, projection.name)
            if projection.plan.lanes:
                snapshot = str(session.execute(select(func.pg_export_snapshot())).scalar_one())
                rows = _load_in_lanes(session_factory, projection, snapshot, progress)
            else:
                rows = _load_here(session, projection, progress)
            _swap_all(session, projection)
            restart_checkpoint(session, projection.name, xmin)
            progress("swap", 1, 1)
    except BaseException:
        if projection.plan.lanes:  # the lanes committed their tables; the swap (if any) rolled back
            _drop_new(session_factory, projection)
        raise
    return RebuildResult(projection.name, rows, time.perf_counter() - started, xmin)


def _load_here(session: Session, projection: Projection, progress: Progress) -> dict[str, int]:
    """Every table loaded, then indexed, in the swapping transaction itself."""
    rows: dict[str, int] = {}
    for live in projection.tables:
        _create_empty(session, live, NEW[live])
    steps = len(projection.tables) * 2
    for step, live in enumerate(projection.tables):
        progress(f"load {live.name}", step, steps)
        rows[live.name] = _load(session, projection.load(NEW, live))
    for step, live in enumerate(projection.tables):
        progress(f"index {live.name}", len(projection.tables) + step, steps)
        _index_and_analyze(session, live)
    return rows


def _load_in_lanes(
    session_factory: SessionFactory, projection: Projection, snapshot: str, progress: Progress
) -> dict[str, int]:
    """The first table from the normalized tables on the exported snapshot (its parts in
    parallel sessions), committed; then its indexes and each lane of derived tables in
    parallel sessions (PostgreSQL runs each session on a core of its own). Every table is
    committed under its `__new` name."""
    first = projection.tables[0]
    parts = projection.plan.first_parts
    steps = _StepCounter(progress, len(projection.tables) * 2)
    with session_factory() as session, session.begin():
        steps.start(f"load {first.name}")
        _create_empty(session, first, NEW[first])

    def load_part(index: int) -> int:
        with session_factory() as session, session.begin():
            _repeatable_read(session)
            # Text: Core has no SET TRANSACTION SNAPSHOT, and it takes no bind parameter.
            session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
            statement = (
                projection.load_part(NEW, index, parts)
                if parts > 1
                else projection.load(NEW, first)
            )
            return _load(session, statement)

    with ThreadPoolExecutor(max_workers=parts) as pool:
        rows = {first.name: sum(pool.map(load_part, range(parts)))}

    def index_first() -> dict[str, int]:
        with session_factory() as session, session.begin():
            steps.start(f"index {first.name}")
            _index_and_analyze(session, first)
        return {}

    def load_lane(lane: Sequence[Table]) -> dict[str, int]:
        counted: dict[str, int] = {}
        with session_factory() as session, session.begin():
            for live in lane:
                steps.start(f"load {live.name}")
                _create_empty(session, live, NEW[live])
                counted[live.name] = _load(session, projection.load(NEW, live))
            for live in lane:
                steps.start(f"index {live.name}")
                _index_and_analyze(session, live)
        return counted

    # Leaving the block waits for every session, so a failure is raised once all are done.
    with ThreadPoolExecutor(max_workers=len(projection.plan.lanes) + 1) as pool:
        futures = [pool.submit(index_first)]
        futures += [pool.submit(load_lane, lane) for lane in projection.plan.lanes]
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


def _drop_new(session_factory: SessionFactory, projection: Projection) -> None:
    """Drop the `__new` tables a failed rebuild committed, under the projection's lock (so
    never those of a rebuild started since), each on its own: best effort, as the next
    rebuild replaces what this leaves."""
    try:
        with session_factory() as session, session.begin():
            lock_projection(session, projection.name)
            for live in projection.tables:
                try:
                    with session.begin_nested():
                        session.execute(DropTable(NEW[live], if_exists=True))
                except SQLAlchemyError:
                    log.warning("could not drop %s after a failed rebuild", NEW[live].name)
    except SQLAlchemyError:
        log.warning(
            "could not drop the tables of a failed rebuild of %s", projection.name, exc_info=True
        )


# --- Verify ------------------------------------------------------------------------------------


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


def verify(
    session_factory: SessionFactory,
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
    check = _Check(by_name(name), sample, org_ids)
    for _ in range(attempts):
        advance(session_factory, check.projection)
        result = check.run(session_factory)
        if result is not None:
            return result
        time.sleep(0.2)
    return check.run(session_factory, force=True) or VerifyResult(name, [])


@dataclass
class _Check:
    projection: Projection
    sample: int
    org_ids: list[Any] | None

    def run(self, session_factory: SessionFactory, *, force: bool = False) -> VerifyResult | None:
        projection = self.projection
        scoped = self.org_ids is not None
        params: dict[str, Any] = {ORGS.key: list(self.org_ids or [])}
        with session_factory() as session, session.begin():
            _repeatable_read(session)
            if pending_changes(session, projection.name) and not force:
                return None
            for live in projection.tables:
                # Text: Core's CreateTable cannot say LIKE (the live table's columns as they are).
                session.execute(
                    text(f"CREATE TEMP TABLE {VERIFY[live].name} (LIKE {live.name}) ON COMMIT DROP")
                )
            for live in projection.tables:
                session.execute(projection.load(VERIFY, live, scoped=scoped), params)
            diffs = [
                diff
                for live in projection.tables
                if projection.compared(LIVE, live) is not None
                and (diff := self._diff(session, live, scoped, params)) is not None
            ]
            session.rollback()
        return VerifyResult(projection.name, diffs)

    def _diff(
        self, session: Session, live: Table, scoped: bool, params: dict[str, Any]
    ) -> TableDiff | None:
        live_rows = self.projection.compared(LIVE, live)
        expected = self.projection.compared(VERIFY, live)
        assert live_rows is not None
        assert expected is not None
        if scoped:
            live_rows = live_rows.where(self.projection.in_scope(live))
        missing_result = session.execute(expected.except_all(live_rows), params)
        columns = list(missing_result.keys())
        missing = missing_result.all()
        unexpected = session.execute(live_rows.except_all(expected), params).all()
        if not missing and not unexpected:
            return None

        def show(row: Any) -> str:
            return ", ".join(f"{c}={value}" for c, value in zip(columns, row, strict=True))

        samples = [f"missing    {show(r)}" for r in missing[: self.sample]]
        samples += [f"unexpected {show(r)}" for r in unexpected[: self.sample]]
        return TableDiff(live.name, len(missing), len(unexpected), samples)


def summary(results: list[Any]) -> str:
    return ", ".join(f"{r.projection}: {'ok' if r.ok else 'DIFFERS'}" for r in results)
