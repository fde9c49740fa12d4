"""Where every registered projection stands (shared.checkpoints), and replaying its dead
letters."""

from __future__ import annotations

from sqlalchemy import String, bindparam, func, select, update
from sqlalchemy.orm import Session

from projections.registry import PROJECTIONS, by_name
from projections.runner import CHANGE_COLUMNS, apply_isolating_poison, as_change, lock_projection
from shared.changes import changes_table
from shared.checkpoints import ProjectionStatus
from shared.checkpoints import dead_letters_table as dead_letters
from shared.checkpoints import projection_status as status_of

__all__ = ["ProjectionStatus", "projection_status", "retry_dead_letters"]


def projection_status(session: Session, names: list[str] | None = None) -> list[ProjectionStatus]:
    """Where `names` stand, by default every projection of the registry (a test's or a
    retired projection's checkpoint is not shown)."""
    return status_of(session, names or [p.name for p in PROJECTIONS])


_OPEN_DEAD_LETTERS = (
    select(dead_letters.c.id.label("dead_id"), dead_letters.c.projection, *CHANGE_COLUMNS)
    .join_from(dead_letters, changes_table, changes_table.c.id == dead_letters.c.change_id)
    .where(dead_letters.c.resolved_at.is_(None))
    .order_by(changes_table.c.tx, changes_table.c.id)
)
_OPEN_DEAD_LETTERS_OF = _OPEN_DEAD_LETTERS.where(
    dead_letters.c.projection == bindparam("projection_name", type_=String)
)
_OF_DEAD_LETTER = dead_letters.c.id == bindparam("dead_id")
_FAILED_AGAIN = (
    update(dead_letters)
    .where(_OF_DEAD_LETTER)
    .values(attempts=dead_letters.c.attempts + 1, error=bindparam("message"))
)
_RESOLVED = update(dead_letters).where(_OF_DEAD_LETTER).values(resolved_at=func.now())


def retry_dead_letters(session: Session, projection: str | None = None) -> int:
    """Resolve open dead letters so the runner applies those changes again.

    The changes sit behind the checkpoint, so they are re-applied here, one at a time
    through the projection; one that fails again stays dead-lettered with its new error.
    """
    if projection is None:
        rows = session.execute(_OPEN_DEAD_LETTERS).mappings().all()
    else:
        of = {"projection_name": projection}
        rows = session.execute(_OPEN_DEAD_LETTERS_OF, of).mappings().all()
    for name in sorted({row["projection"] for row in rows}):
        lock_projection(session, name)  # the runner must not interleave
    resolved = 0
    for row in rows:
        failures = apply_isolating_poison(session, by_name(row["projection"]), [as_change(row)])
        if failures:
            exc = failures[0][1]
            message = f"{type(exc).__name__}: {exc}"
            session.execute(_FAILED_AGAIN, {"dead_id": row["dead_id"], "message": message})
            continue
        session.execute(_RESOLVED, {"dead_id": row["dead_id"]})
        resolved += 1
    return resolved
