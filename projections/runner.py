"""Advancing a projection through the change log (DESIGN.md §3–§4).

The rule that makes this exact: read changes in `(tx, id)` order and only from
transactions that have certainly finished (`tx < pg_snapshot_xmin(pg_current_snapshot())`).
A sequence value is handed out before commit, so "id greater than the last seen" would
skip a change that commits late; a transaction id below the snapshot's xmin can no
longer add rows, so nothing can appear behind the checkpoint.

Each batch is applied and the checkpoint advanced in one transaction, under a
per-projection advisory lock: duplicate or concurrent wake-ups cost a little work and
never apply a change twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class ChangeRow:
    id: int
    tx: int
    org_id: Any
    entity: str
    entity_id: Any
    op: str
    payload: dict[str, Any]
    created_at: datetime


class Projector(Protocol):
    """One read model. `apply` must be idempotent: re-applying a change changes nothing."""

    name: str

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None: ...


@dataclass(frozen=True)
class AdvanceResult:
    projection: str
    applied: int
    dead_lettered: int
    locked_elsewhere: bool = False
    drained: bool = True


_LOCK_KEY = "hashtext('evotrack.projection.' || :n)"


def _lock(session: Session, name: str) -> bool:
    """Transaction-scoped advisory lock: one writer per projection, released at commit."""
    return bool(
        session.execute(
            text(f"SELECT pg_try_advisory_xact_lock({_LOCK_KEY})"), {"n": name}
        ).scalar_one()
    )


def lock_projection(session: Session, name: str) -> None:
    """The same lock, waited for: the runner skips the projection, and another holder
    waits, until this transaction ends."""
    session.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})"), {"n": name})


def _checkpoint(session: Session, name: str) -> tuple[int, int]:
    session.execute(
        text("INSERT INTO projection_checkpoints (name) VALUES (:n) ON CONFLICT DO NOTHING"),
        {"n": name},
    )
    tx, change_id = session.execute(
        text("SELECT tx::text, change_id FROM projection_checkpoints WHERE name = :n"),
        {"n": name},
    ).one()
    return int(tx), int(change_id)


def current_xmin(session: Session) -> int:
    return int(
        session.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")).scalar_one()
    )


def fetch_changes(
    session: Session, after: tuple[int, int], below_xmin: int, limit: int
) -> list[ChangeRow]:
    """The watermark query: finished transactions only, in (tx, id) order."""
    rows = session.execute(
        text(
            "SELECT id, tx::text AS tx, org_id, entity, entity_id, op, payload, created_at"
            " FROM changes"
            " WHERE (tx, id) > (CAST(:tx AS xid8), :id) AND tx < CAST(:xmin AS xid8)"
            " ORDER BY tx, id LIMIT :limit"
        ),
        {"tx": str(after[0]), "id": after[1], "xmin": str(below_xmin), "limit": limit},
    ).mappings()
    return [ChangeRow(**{**row, "tx": int(row["tx"])}) for row in rows]


def _skip_dead_letters(session: Session, name: str, changes: list[ChangeRow]) -> list[ChangeRow]:
    if not changes:
        return changes
    dead = set(
        session.execute(
            text(
                "SELECT change_id FROM projection_dead_letters WHERE projection = :n"
                " AND resolved_at IS NULL AND change_id = ANY(:ids)"
            ),
            {"n": name, "ids": [c.id for c in changes]},
        ).scalars()
    )
    return [c for c in changes if c.id not in dead]


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def apply_isolating_poison(
    session: Session, projector: Projector, changes: Sequence[ChangeRow]
) -> list[tuple[ChangeRow, BaseException]]:
    """Apply `changes`; when the batch fails, bisect it so only the failing changes are
    set aside. Transient errors propagate (the job retries with backoff)."""
    try:
        with session.begin_nested():
            projector.apply(session, changes)
        return []
    except Exception as exc:
        if _is_transient(exc):
            raise
        if len(changes) == 1:
            return [(changes[0], exc)]
    middle = len(changes) // 2
    return apply_isolating_poison(session, projector, changes[:middle]) + apply_isolating_poison(
        session, projector, changes[middle:]
    )


def _dead_letter(session: Session, name: str, change: ChangeRow, exc: BaseException) -> None:
    log.error("projection %s: change %s dead-lettered: %s", name, change.id, exc, exc_info=exc)
    session.execute(
        text(
            "INSERT INTO projection_dead_letters (projection, change_id, tx, error)"
            " VALUES (:n, :id, CAST(:tx AS xid8), :err)"
            " ON CONFLICT (projection, change_id) WHERE resolved_at IS NULL"
            " DO UPDATE SET attempts = projection_dead_letters.attempts + 1, error = EXCLUDED.error"
        ),
        {
            "n": name,
            "id": change.id,
            "tx": str(change.tx),
            "err": f"{type(exc).__name__}: {exc}"[:4000],
        },
    )
    session.execute(
        text(
            "UPDATE projection_checkpoints SET last_error = :err, last_error_at = now()"
            " WHERE name = :n"
        ),
        {"n": name, "err": f"change {change.id}: {type(exc).__name__}: {exc}"[:4000]},
    )


def _save_checkpoint(
    session: Session, name: str, last: ChangeRow | None, watermark: int | None
) -> None:
    session.execute(
        text(
            "UPDATE projection_checkpoints SET"
            " tx = COALESCE(CAST(:tx AS xid8), tx),"
            " change_id = COALESCE(CAST(:id AS bigint), change_id),"
            " watermark = GREATEST(watermark, COALESCE(CAST(:wm AS xid8), watermark)),"
            " updated_at = now()"
            " WHERE name = :n"
        ),
        {
            "n": name,
            "tx": str(last.tx) if last else None,
            "id": last.id if last else None,
            "wm": str(watermark) if watermark is not None else None,
        },
    )


def advance_one_batch(
    session: Session, projector: Projector, batch_size: int
) -> AdvanceResult | None:
    """One transaction's worth of work; the caller commits. None when nothing was left."""
    if not _lock(session, projector.name):
        return AdvanceResult(projector.name, 0, 0, locked_elsewhere=True)
    position = _checkpoint(session, projector.name)
    xmin = current_xmin(session)
    changes = fetch_changes(session, position, xmin, batch_size)
    drained = len(changes) < batch_size
    live = _skip_dead_letters(session, projector.name, changes)
    failures = apply_isolating_poison(session, projector, live) if live else []
    for change, exc in failures:
        _dead_letter(session, projector.name, change, exc)
    _save_checkpoint(
        session, projector.name, changes[-1] if changes else None, xmin if drained else None
    )
    if not changes:
        return None
    return AdvanceResult(projector.name, len(live) - len(failures), len(failures), drained=drained)


def advance(
    session_factory: Callable[[], Session],
    projector: Projector,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> AdvanceResult:
    """Advance `projector` to the current watermark, one committed batch at a time.

    `should_stop` is asked between batches: a worker asked to stop finishes the batch in
    hand (it commits with its checkpoint) and leaves the rest to the next wake-up."""
    applied = dead = 0
    batches = 0
    while (max_batches is None or batches < max_batches) and not should_stop():
        with session_factory() as session, session.begin():
            result = advance_one_batch(session, projector, batch_size)
        batches += 1
        if result is None:
            break
        if result.locked_elsewhere:
            return AdvanceResult(projector.name, applied, dead, locked_elsewhere=True)
        applied += result.applied
        dead += result.dead_lettered
        if result.drained:
            # A short batch: the watermark was reached (it may have moved since; the
            # next wake-up or the sweeper takes it from here).
            break
    return AdvanceResult(projector.name, applied, dead)


def projections_behind(session: Session, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """The projections with committed changes beyond their checkpoint, each with that
    checkpoint `(tx, change_id)`: whoever compares two sweeps can tell whether it moved."""
    rows = session.execute(
        text(
            "SELECT n.name, COALESCE(p.tx, '0'::xid8)::text, COALESCE(p.change_id, 0)"
            " FROM unnest(CAST(:names AS text[])) AS n(name)"
            " LEFT JOIN projection_checkpoints p ON p.name = n.name"
            " WHERE EXISTS (SELECT 1 FROM changes c WHERE (c.tx, c.id) >"
            " (COALESCE(p.tx, '0'::xid8), COALESCE(p.change_id, 0)))"
        ),
        {"names": list(names)},
    )
    return {str(name): (int(tx), int(change_id)) for name, tx, change_id in rows}


def prune_change_log(
    session: Session, names: Sequence[str], retention_days: int, batch_size: int = 5000
) -> int:
    """Delete one batch of change rows that every projection has passed and that are older
    than the retention. Small batches in short transactions: writers are never blocked,
    they only ever append. Changes still dead-lettered are kept for `retry`."""
    oldest = session.execute(
        text(
            "SELECT p.tx::text, p.change_id, count(*) OVER () AS known"
            " FROM projection_checkpoints p WHERE p.name = ANY(:names)"
            " ORDER BY p.tx, p.change_id LIMIT 1"
        ),
        {"names": list(names)},
    ).one_or_none()
    if oldest is None or int(oldest.known) < len(set(names)):
        return 0  # a projection that has not started yet has passed nothing
    result = session.execute(
        text(
            "DELETE FROM changes WHERE id IN ("
            " SELECT c.id FROM changes c"
            " WHERE (c.tx, c.id) <= (CAST(:tx AS xid8), :id)"
            "   AND c.created_at < now() - make_interval(days => :days)"
            "   AND NOT EXISTS (SELECT 1 FROM projection_dead_letters d"
            "     WHERE d.change_id = c.id AND d.resolved_at IS NULL)"
            " ORDER BY c.tx, c.id LIMIT :batch)"
        ),
        {"tx": oldest.tx, "id": oldest.change_id, "days": retention_days, "batch": batch_size},
    )
    return int(getattr(result, "rowcount", 0) or 0)
