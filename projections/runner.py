"""Advancing a projection through the change log (DESIGN.md §3–§4).

The rule that makes this exact: read changes in `(tx, id)` order and only from
transactions that have certainly finished (`tx < pg_snapshot_xmin(pg_current_snapshot())`).
A sequence value is handed out before commit, so "id greater than the last seen" would
skip a change that commits late; a transaction id below the snapshot's xmin can no
longer add rows, so nothing can appear behind the checkpoint.

Each batch is applied and the checkpoint advanced in one transaction, under a
per-projection advisory lock: duplicate or concurrent wake-ups cost a little work and
never apply a change twice.

The statements are built once, on the tables of `Change`, `ProjectionCheckpoint` and
`ProjectionDeadLetter`: they run once per batch and find themselves in the compiled cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Interval,
    RowMapping,
    String,
    Text,
    any_,
    bindparam,
    delete,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from projections.projection import ChangeRow, Projection
from shared.changes import Xid8
from shared.changes import changes_table as change_log
from shared.checkpoints import SNAPSHOT_XMIN, UNAPPLIED, applied_position
from shared.checkpoints import checkpoints_table as checkpoints
from shared.checkpoints import dead_letters_table as dead_letters

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class AdvanceResult:
    projection: str
    applied: int
    dead_lettered: int
    locked_elsewhere: bool = False
    drained: bool = True


_NAME = bindparam("projection_name", type_=String)
_OF_PROJECTION = checkpoints.c.name == _NAME

# --- The writer lock -----------------------------------------------------------------------

_LOCK_KEY = func.hashtext(bindparam("lock_key", type_=Text))
_TRY_LOCK = select(func.pg_try_advisory_xact_lock(_LOCK_KEY))
_WAIT_FOR_LOCK = select(func.pg_advisory_xact_lock(_LOCK_KEY))


def _lock_key(name: str) -> dict[str, str]:
    return {"lock_key": f"evotrack.projection.{name}"}


def _lock(session: Session, name: str) -> bool:
    """Transaction-scoped advisory lock: one writer per projection, released at commit."""
    return bool(session.execute(_TRY_LOCK, _lock_key(name)).scalar_one())


def lock_projection(session: Session, name: str) -> None:
    """The same lock, waited for: the runner skips the projection, and another holder
    waits, until this transaction ends."""
    session.execute(_WAIT_FOR_LOCK, _lock_key(name))


# --- The checkpoint ------------------------------------------------------------------------

_CREATE_CHECKPOINT = insert(checkpoints).values(name=_NAME).on_conflict_do_nothing()
_POSITION = select(checkpoints.c.tx, checkpoints.c.change_id).where(_OF_PROJECTION)
_CURRENT_XMIN = select(SNAPSHOT_XMIN)

# COALESCE: a batch that read nothing keeps its position; GREATEST: a watermark never
# moves back (a rebuild may have set it ahead of this transaction's snapshot).
_SAVE_CHECKPOINT = (
    update(checkpoints)
    .where(_OF_PROJECTION)
    .values(
        tx=func.coalesce(bindparam("last_tx", type_=Xid8()), checkpoints.c.tx),
        change_id=func.coalesce(bindparam("last_id", type_=BigInteger), checkpoints.c.change_id),
        watermark=func.greatest(
            checkpoints.c.watermark,
            func.coalesce(bindparam("new_watermark", type_=Xid8()), checkpoints.c.watermark),
        ),
        updated_at=func.now(),
    )
)

_XMIN = bindparam("xmin", type_=Xid8())
_RESTART = (
    update(checkpoints)
    .where(_OF_PROJECTION)
    .values(
        tx=_XMIN,
        change_id=0,
        watermark=func.greatest(checkpoints.c.watermark, _XMIN),
        updated_at=func.now(),
    )
)

_PENDING = (
    select(func.count()).select_from(change_log).join(checkpoints, UNAPPLIED).where(_OF_PROJECTION)
)


def _checkpoint(session: Session, name: str) -> tuple[int, int]:
    session.execute(_CREATE_CHECKPOINT, {"projection_name": name})
    tx, change_id = session.execute(_POSITION, {"projection_name": name}).one()
    return tx, change_id


def checkpoint_position(session: Session, name: str) -> tuple[int, int]:
    """The `(tx, change_id)` of the last change `name` applied; (0, 0) before its first."""
    row = session.execute(_POSITION, {"projection_name": name}).one_or_none()
    return (0, 0) if row is None else (row.tx, row.change_id)


def followed_position(session: Session, names: Sequence[str]) -> tuple[int, int]:
    """The last change every one of these projections has applied (see
    `Projection.follows`)."""
    return min(checkpoint_position(session, name) for name in names)


def restart_checkpoint(session: Session, name: str, xmin: int) -> None:
    """Move `name` back to the first change of transaction `xmin`: it re-applies every
    change a snapshot with that xmin may not have seen. Its watermark stays where it was
    if that is higher (tokens it already covered stay covered)."""
    session.execute(_CREATE_CHECKPOINT, {"projection_name": name})
    session.execute(_RESTART, {"projection_name": name, "xmin": xmin})


def pending_changes(session: Session, name: str) -> int:
    """The committed changes beyond `name`'s checkpoint, also those a transaction still
    running holds behind the watermark; 0 without a checkpoint."""
    return int(session.execute(_PENDING, {"projection_name": name}).scalar_one())


def current_xmin(session: Session) -> int:
    return int(session.execute(_CURRENT_XMIN).scalar_one())


def _save_checkpoint(
    session: Session, name: str, last: ChangeRow | None, watermark: int | None
) -> None:
    session.execute(
        _SAVE_CHECKPOINT,
        {
            "projection_name": name,
            "last_tx": last.tx if last else None,
            "last_id": last.id if last else None,
            "new_watermark": watermark,
        },
    )


# --- Reading the change log ------------------------------------------------------------------

CHANGE_COLUMNS = tuple(change_log.c[field.name] for field in fields(ChangeRow))

# The watermark query; it walks the (tx, id) index in order and stops at the limit. In xid
# order, not text order: as text '10' < '9', and a batch would pass changes it never read.
_FETCH_CHANGES = (
    select(*CHANGE_COLUMNS)
    .where(
        tuple_(change_log.c.tx, change_log.c.id)
        > tuple_(bindparam("after_tx", type_=Xid8()), bindparam("after_id", type_=BigInteger)),
        change_log.c.tx < _XMIN,
    )
    .order_by(change_log.c.tx, change_log.c.id)
    .limit(bindparam("batch_size", type_=Integer))
)


def as_change(row: RowMapping) -> ChangeRow:
    """A row holding CHANGE_COLUMNS (and maybe more) as the change a projection applies."""
    return ChangeRow(**{column.name: row[column.name] for column in CHANGE_COLUMNS})


def fetch_changes(
    session: Session, after: tuple[int, int], below_xmin: int, limit: int
) -> list[ChangeRow]:
    """The watermark query: finished transactions only, in (tx, id) order."""
    rows = session.execute(
        _FETCH_CHANGES,
        {"after_tx": after[0], "after_id": after[1], "xmin": below_xmin, "batch_size": limit},
    )
    return [ChangeRow(**row) for row in rows.mappings()]


# --- Dead letters ----------------------------------------------------------------------------

_OPEN_DEAD_LETTERS = select(dead_letters.c.change_id).where(
    dead_letters.c.projection == _NAME,
    dead_letters.c.resolved_at.is_(None),
    dead_letters.c.change_id == any_(bindparam("change_ids", type_=ARRAY(BigInteger))),
)

_NEW_DEAD_LETTER = (
    insert(dead_letters)
    .inline()
    .values(
        projection=_NAME,
        change_id=bindparam("change_id", type_=BigInteger),
        tx=bindparam("change_tx", type_=Xid8()),
        error=bindparam("message", type_=Text),
    )
)
# The target is the partial unique index: one open dead letter per change and projection.
_DEAD_LETTER = _NEW_DEAD_LETTER.on_conflict_do_update(
    index_elements=[dead_letters.c.projection, dead_letters.c.change_id],
    index_where=dead_letters.c.resolved_at.is_(None),
    set_={
        "attempts": dead_letters.c.attempts + 1,
        "error": _NEW_DEAD_LETTER.excluded.error,
    },
)
_RECORD_ERROR = (
    update(checkpoints)
    .where(_OF_PROJECTION)
    .values(last_error=bindparam("message", type_=Text), last_error_at=func.now())
)


def _skip_dead_letters(session: Session, name: str, changes: list[ChangeRow]) -> list[ChangeRow]:
    if not changes:
        return changes
    dead = set(
        session.execute(
            _OPEN_DEAD_LETTERS,
            {"projection_name": name, "change_ids": [c.id for c in changes]},
        ).scalars()
    )
    return [c for c in changes if c.id not in dead]


def is_transient(exc: BaseException) -> bool:
    """A failure to retry with backoff (the database restarting, a dropped connection)."""
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def _refused_by_the_driver(exc: BaseException) -> bool:
    """An OperationalError the server never sent, on a connection still good: the driver
    refused the statement itself (more than 65,535 parameters, say). It is about these
    changes, so the batch is bisected like any poison, not retried for ever."""
    if not isinstance(exc, OperationalError) or exc.connection_invalidated:
        return False
    return getattr(exc.orig, "sqlstate", None) is None


def apply_isolating_poison(
    session: Session, projection: Projection, changes: Sequence[ChangeRow]
) -> list[tuple[ChangeRow, BaseException]]:
    """Apply `changes`; when the batch fails, bisect it so only the failing changes are
    set aside. Transient errors propagate (the job retries with backoff)."""
    try:
        with session.begin_nested():
            projection.apply(session, changes)
        return []
    except Exception as exc:
        if is_transient(exc) and not _refused_by_the_driver(exc):
            raise
        if len(changes) == 1:
            return [(changes[0], exc)]
    middle = len(changes) // 2
    return apply_isolating_poison(session, projection, changes[:middle]) + apply_isolating_poison(
        session, projection, changes[middle:]
    )


def _dead_letter(session: Session, name: str, change: ChangeRow, exc: BaseException) -> None:
    log.error("projection %s: change %s dead-lettered: %s", name, change.id, exc, exc_info=exc)
    session.execute(
        _DEAD_LETTER,
        {
            "projection_name": name,
            "change_id": change.id,
            "change_tx": change.tx,
            "message": f"{type(exc).__name__}: {exc}"[:4000],
        },
    )
    session.execute(
        _RECORD_ERROR,
        {
            "projection_name": name,
            "message": f"change {change.id}: {type(exc).__name__}: {exc}"[:4000],
        },
    )


# --- Advancing -------------------------------------------------------------------------------


def advance_one_batch(
    session: Session, projection: Projection, batch_size: int
) -> AdvanceResult | None:
    """One transaction's worth of work; the caller commits. None when nothing was left."""
    if not _lock(session, projection.name):
        return AdvanceResult(projection.name, 0, 0, locked_elsewhere=True)
    position = _checkpoint(session, projection.name)
    xmin = current_xmin(session)
    changes = fetch_changes(session, position, xmin, batch_size)
    drained = len(changes) < batch_size
    held_back = False
    if projection.follows:
        bound = followed_position(session, projection.follows)
        kept = [change for change in changes if (change.tx, change.id) <= bound]
        held_back, drained = len(kept) < len(changes), drained or len(kept) < len(changes)
        changes = kept
    live = _skip_dead_letters(session, projection.name, changes)
    failures = apply_isolating_poison(session, projection, live) if live else []
    for change, exc in failures:
        _dead_letter(session, projection.name, change, exc)
    watermark = xmin if drained and not held_back else None
    _save_checkpoint(session, projection.name, changes[-1] if changes else None, watermark)
    if not changes:
        return None
    return AdvanceResult(projection.name, len(live) - len(failures), len(failures), drained=drained)


def advance(
    session_factory: Callable[[], Session],
    projection: Projection,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> AdvanceResult:
    """Advance `projection` to the current watermark, one committed batch at a time.

    `should_stop` is asked between batches: a worker asked to stop finishes the batch in
    hand (it commits with its checkpoint) and leaves the rest to the next wake-up."""
    applied = dead = 0
    batches = 0
    while (max_batches is None or batches < max_batches) and not should_stop():
        with session_factory() as session, session.begin():
            result = advance_one_batch(session, projection, batch_size)
        batches += 1
        if result is None:
            break
        if result.locked_elsewhere:
            return AdvanceResult(projection.name, applied, dead, locked_elsewhere=True)
        applied += result.applied
        dead += result.dead_lettered
        if result.drained:
            # A short batch: the watermark was reached (it may have moved since; the
            # next wake-up or the sweeper takes it from here).
            break
    return AdvanceResult(projection.name, applied, dead)


# --- For the sweeper -------------------------------------------------------------------------

_NAMES = func.unnest(bindparam("names", type_=ARRAY(String))).table_valued("name").render_derived()
_BEHIND = (
    select(_NAMES.c.name, *applied_position())
    .select_from(_NAMES.outerjoin(checkpoints, checkpoints.c.name == _NAMES.c.name))
    .where(exists().where(UNAPPLIED))
)


def projections_behind(session: Session, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """The projections with committed changes beyond their checkpoint, each with that
    checkpoint `(tx, change_id)`: whoever compares two sweeps can tell whether it moved."""
    rows = session.execute(_BEHIND, {"names": list(names)})
    return {name: (tx, change_id) for name, tx, change_id in rows}


_OLDEST_CHECKPOINT = (
    select(checkpoints.c.tx, checkpoints.c.change_id, func.count().over().label("known"))
    .where(checkpoints.c.name == any_(bindparam("names", type_=ARRAY(String))))
    .order_by(checkpoints.c.tx, checkpoints.c.change_id)
    .limit(1)
)


_passed = change_log.alias("passed")  # its own FROM: the batch is chosen before the DELETE
_PRUNE = delete(change_log).where(
    change_log.c.id.in_(
        select(_passed.c.id)
        .where(
            tuple_(_passed.c.tx, _passed.c.id)
            <= tuple_(
                bindparam("through_tx", type_=Xid8()), bindparam("through_id", type_=BigInteger)
            ),
            _passed.c.created_at < func.now() - bindparam("retention", type_=Interval()),
            ~exists().where(
                dead_letters.c.change_id == _passed.c.id, dead_letters.c.resolved_at.is_(None)
            ),
        )
        .order_by(_passed.c.tx, _passed.c.id)
        .limit(bindparam("batch_size", type_=Integer))
    )
)


def prune_change_log(
    session: Session, names: Sequence[str], retention_days: int, batch_size: int = 5000
) -> int:
    """Delete one batch of change rows that every projection has passed and that are older
    than the retention. Small batches in short transactions: writers are never blocked,
    they only ever append. Changes still dead-lettered are kept for `retry`."""
    oldest = session.execute(_OLDEST_CHECKPOINT, {"names": list(names)}).one_or_none()
    if oldest is None or oldest.known < len(set(names)):
        return 0  # a projection that has not started yet has passed nothing
    result = session.execute(
        _PRUNE,
        {
            "through_tx": oldest.tx,
            "through_id": oldest.change_id,
            "retention": timedelta(days=retention_days),
            "batch_size": batch_size,
        },
    )
    return int(getattr(result, "rowcount", 0) or 0)
