"""An organization's "no overlapping entries" policy, applied to its stored entries.

Each entry carries `no_overlap`, copied from its organization when it is written; the
exclusion constraint `ex_time_entries_no_overlap` only covers rows where it is true. So
turning the policy on flips the flag on every live entry of the organization and lets
PostgreSQL check, in that one statement, that none of them overlap already.
"""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from command_api.modules.time_entries.models import TimeEntry
from shared.errors import ConflictError

EXCLUSION_VIOLATION = "23P01"


def apply_overlap_policy(session: Session, org_id: uuid.UUID, enabled: bool) -> None:
    """Set `no_overlap` on the organization's entries; 409 when enabling meets overlaps."""
    statement = (
        update(TimeEntry)
        .where(TimeEntry.org_id == org_id, TimeEntry.no_overlap != enabled)
        # Bookkeeping of the organization's policy, not a change of the entries: their
        # versions and `updated_at` stay.
        .values(no_overlap=enabled, updated_at=TimeEntry.updated_at)
        .execution_options(synchronize_session=False)
    )
    if enabled:
        # Deleted entries are outside the constraint; leave them as they are.
        statement = statement.where(TimeEntry.deleted_at.is_(None))
    try:
        with session.begin_nested():
            session.execute(statement)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != EXCLUSION_VIOLATION:
            raise
        raise ConflictError(
            "Cannot forbid overlaps: existing entries overlap; fix them first"
        ) from exc
