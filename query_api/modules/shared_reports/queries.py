"""SQL of shared reports: the list, on proj_shared_reports, and a link by its token's hash.

A revoke is honoured from the moment it commits, not only once the catalog projection has
applied it: the lookup also reads the tail of the change log the catalog has not applied
yet (changes above its checkpoint), in the same statement and so the same snapshot, and a
change of the link there means it was revoked (a link has no other change). That tail is
a range of the `(tx, id)` index, a few rows while the projections keep up; when it is
longer than `MAX_UNAPPLIED` the link is refused with 503 PROJECTION_LAG rather than shown
with a revoke that might be hiding in it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, exists, func, literal, select, tuple_
from sqlalchemy.engine import RowMapping

from projections.models import proj_members, proj_organizations, proj_shared_reports
from shared.changes import Xid8, changes_table
from shared.checkpoints import checkpoints_table
from shared.db import ReadSession
from shared.pagination import PageParams

ENTITY = "shared_report"
# The projection proj_shared_reports belongs to.
PROJECTION = "catalog"
# Unapplied changes looked through for a revoke, at most: past it the catalog lags too far.
MAX_UNAPPLIED = 10_000

_LISTED = [c for c in proj_shared_reports.c if c.name != "token_hash"]


def shared_reports_page(
    session: ReadSession, org_id: uuid.UUID, created_by: uuid.UUID | None, page: PageParams
) -> tuple[Sequence[RowMapping], int]:
    """A page of the organization's live links (`created_by`'s only, unless None), newest
    first, and how many there are. Never a token's hash."""
    links = proj_shared_reports.c
    where = [links.org_id == org_id]
    if created_by is not None:
        where.append(links.created_by == created_by)
    total = int(session.execute(select(func.count()).where(*where)).scalar_one())
    rows = session.execute(
        select(*_LISTED)
        .where(*where)
        .order_by(links.created_at.desc(), links.id)
        .limit(page.page_size)
        .offset(page.offset)
    ).mappings()
    return rows.all(), total


def _checkpoint(column: Any, zero: Any) -> Any:
    """The catalog's checkpoint `column`, as a scalar subquery: a parameter of the index
    scan below (a join to the checkpoint row would scan the whole log instead)."""
    applied = select(column).where(checkpoints_table.c.name == PROJECTION).scalar_subquery()
    return func.coalesce(applied, zero)


def _unapplied_tail() -> Any:
    """The first MAX_UNAPPLIED + 1 changes of the log the catalog projection has not applied."""
    changes, checkpoint = changes_table.c, checkpoints_table.c
    position = tuple_(
        _checkpoint(checkpoint.tx, literal(0, Xid8())), _checkpoint(checkpoint.change_id, 0)
    )
    return (
        select(changes.entity, changes.entity_id)
        .where(tuple_(changes.tx, changes.id) > position)
        .order_by(changes.tx, changes.id)
        .limit(MAX_UNAPPLIED + 1)
        .cte("unapplied")
    )


def _link_by_hash() -> Any:
    tail = _unapplied_tail()
    links = proj_shared_reports.c
    changed = exists().where(tail.c.entity == ENTITY, tail.c.entity_id == links.id)
    unapplied = select(func.count()).select_from(tail).scalar_subquery()
    return select(
        proj_shared_reports,
        changed.label("change_pending"),
        unapplied.label("unapplied_changes"),
    ).where(links.token_hash == bindparam("token_hash"))


# Built once: every public read runs it.
_LINK = _link_by_hash()


def link_by_hash(session: ReadSession, token_hash: str) -> RowMapping | None:
    """The live link whose token hashes to `token_hash`, with `change_pending` (a change of
    it, a revoke, is committed and not projected yet) and `unapplied_changes` (how many
    changes the catalog has not applied, up to MAX_UNAPPLIED + 1)."""
    return session.execute(_LINK, {"token_hash": token_hash}).mappings().one_or_none()


def creator_membership(
    session: ReadSession, org_id: uuid.UUID, user_id: uuid.UUID
) -> RowMapping | None:
    """The organization with the creator's `role` in it now; None when either is gone."""
    return (
        session.execute(
            select(proj_organizations, proj_members.c.role)
            .join(proj_members, proj_members.c.org_id == proj_organizations.c.id)
            .where(proj_organizations.c.id == org_id, proj_members.c.user_id == user_id)
        )
        .mappings()
        .one_or_none()
    )
