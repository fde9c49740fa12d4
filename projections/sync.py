"""The sync feed: what delta sync (API.md, "Delta sync") pages through.

One row per entity of an organization (`proj_sync_feed`), at the position in the change log
of the last change that altered what a client should hold for it. An entry's row is its
user's (`owner_id`): a caller who sees some users only reads their rows, and an entry moved
to another user leaves a tombstone in its former user's rows, so that whoever saw it there
learns it left. Catalog rows belong to everyone (`EVERYONE`). A change moves the rows of:

- its own entity (a deletion makes the row a tombstone, a re-creation live again);
- for an entry, its project and task as well: their totals count it;
- for a rename of a project, client, task, tag or user, the entries, projects and members
  that show the name;
- for a team link, the team (its leads and member count) and the member (their teams).

What a caller may see is not here: a cursor is bound to the caller's view, and the query API
starts a caller over (`reset`) when it changed (a new role, a team change that widens or
narrows whom they see).

The feed holds positions, not copies: the query API reads each entity from the other
projections when it serves the page. A row only moves forward, so applying a change again
(after a rebuild, say) changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    CompoundSelect,
    DateTime,
    Executable,
    Select,
    String,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    literal,
    select,
    tuple_,
    union,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from command_api.modules.organizations.models import Membership, Organization, Team
from command_api.modules.projects.models import Client, Project, Tag, Task
from command_api.modules.time_entries.models import TimeEntry, TimeEntryTag
from projections.models import (
    EVERYONE,
    SYNC_CLIENT,
    SYNC_MEMBER,
    SYNC_PROJECT,
    SYNC_TAG,
    SYNC_TASK,
    SYNC_TEAM,
    SYNC_TIME_ENTRY,
    proj_sync_feed,
    proj_sync_horizons,
)
from projections.projection import IDS, ORGS, ChangeRow, Projection, Tables, among, fill
from shared.changes import Xid8
from shared.checkpoints import SNAPSHOT_XMIN

# Any select of rows (SQLAlchemy's Select is generic in the types of its columns).
Rows = Select[*tuple[Any, ...]]
Keys = Rows | CompoundSelect[*tuple[Any, ...]]

FEED_COLUMNS = ("org_id", "kind", "owner_id", "entity_id", "tx", "change_id", "gone", "changed_at")
_AT = bindparam("at", type_=DateTime(timezone=True))
_TX = bindparam("tx", type_=Xid8())
_CHANGE_ID = bindparam("change_id", type_=BigInteger)
_EVERYONE = literal(EVERYONE, Uuid)


# --- Writing rows: moved forward, never back ----------------------------------------------------


def _upsert(rows: Keys, *, sets_gone: bool) -> Executable:
    """Insert the feed rows `rows` selects (FEED_COLUMNS), or move existing ones forward:
    never back, so that a change applied again leaves a row a later change moved. Unless
    `sets_gone`, an existing row keeps what it says of its entity (the change altered how
    the entity shows, not whether it is there)."""
    statement = postgresql.insert(proj_sync_feed).from_select(list(FEED_COLUMNS), rows)
    feed, new = proj_sync_feed.c, statement.excluded
    moved = {"tx": new.tx, "change_id": new.change_id, "changed_at": new.changed_at}
    return statement.on_conflict_do_update(
        index_elements=[feed.org_id, feed.kind, feed.owner_id, feed.entity_id],
        set_={**moved, "gone": new.gone} if sets_gone else moved,
        where=tuple_(feed.tx, feed.change_id) <= tuple_(new.tx, new.change_id),
    )


def _array(name: str, item: Any) -> Any:
    return func.unnest(bindparam(name, type_=postgresql.ARRAY(item)))


def _named_rows(*, sets_gone: bool) -> Executable:
    """Rows named one by one, as parallel arrays: one statement for a whole batch."""
    rows = select(
        _array("org_ids", Uuid).label("org_id"),
        _array("kinds", String).label("kind"),
        _array("owner_ids", Uuid).label("owner_id"),
        _array("entity_ids", Uuid).label("entity_id"),
        _array("txs", Text).label("tx"),  # xid8 travels as text (shared.changes.Xid8)
        _array("change_ids", BigInteger).label("change_id"),
        _array("gones", Boolean).label("gone"),
        _array("ats", DateTime(timezone=True)).label("changed_at"),
    ).subquery("named")
    columns = [cast(rows.c.tx, Xid8()) if name == "tx" else rows.c[name] for name in FEED_COLUMNS]
    return _upsert(select(*columns), sets_gone=sets_gone)


def _entry_rows() -> Executable:
    """The rows of the entries in `entry_ids`, each at its change's position, as the entries
    are now: under their user, gone when deleted. From the table rather than the change's
    payload, so that a change written without one (a seeded test row) moves them too."""
    changed = select(
        _array("entry_ids", Uuid).label("id"),
        _array("txs", Text).label("tx"),
        _array("change_ids", BigInteger).label("change_id"),
        _array("ats", DateTime(timezone=True)).label("changed_at"),
    ).subquery("changed")
    rows = select(
        TimeEntry.org_id,
        literal(SYNC_TIME_ENTRY),
        TimeEntry.user_id,
        TimeEntry.id,
        cast(changed.c.tx, Xid8()),
        changed.c.change_id,
        TimeEntry.deleted_at.is_not(None),
        changed.c.changed_at,
    ).join(changed, changed.c.id == TimeEntry.id)
    return _upsert(rows, sets_gone=True)


def _at_change(keys: Keys) -> Executable:
    """The rows of the (org_id, kind, owner_id, entity_id[, gone]) `keys` selects for IDS,
    moved to the change's position (`tx`, `change_id`, `at`); without `gone`, a new row is
    live and an existing one keeps what it says."""
    chosen = keys.subquery("chosen")
    org_id, kind, owner_id, entity_id, *gone = chosen.c
    return _upsert(
        select(
            org_id, kind, owner_id, entity_id, _TX, _CHANGE_ID, gone[0] if gone else false(), _AT
        ),
        sets_gone=bool(gone),
    )


def _with_projects_and_tasks(entries: Rows) -> Keys:
    """The keys of the live entries `entries` selects (by id), and of their projects and
    tasks: their totals count those entries."""
    chosen = entries.where(TimeEntry.deleted_at.is_(None)).cte("chosen")
    return union(
        select(chosen.c.org_id, literal(SYNC_TIME_ENTRY), chosen.c.user_id, chosen.c.id),
        select(chosen.c.org_id, literal(SYNC_PROJECT), _EVERYONE, chosen.c.project_id).where(
            chosen.c.project_id.is_not(None)
        ),
        select(chosen.c.org_id, literal(SYNC_TASK), _EVERYONE, chosen.c.task_id).where(
            chosen.c.task_id.is_not(None)
        ),
    )


def _entries_where(condition: ColumnElement[bool]) -> Executable:
    entries = select(
        TimeEntry.org_id, TimeEntry.user_id, TimeEntry.id, TimeEntry.project_id, TimeEntry.task_id
    )
    return _at_change(_with_projects_and_tasks(entries.where(condition)))


def _catalog_rows(kind: str, table: Any, entity_id: Any, *where: ColumnElement[bool]) -> Rows:
    return select(table.c.org_id, literal(kind), _EVERYONE, entity_id).where(*where)


# What a change moves beyond its own row: one statement each, taking IDS and the position.
MOVE_ENTRIES_OF_PROJECTS = _entries_where(among(TimeEntry.project_id, IDS))
MOVE_ENTRIES_OF_TASKS = _entries_where(among(TimeEntry.task_id, IDS))
MOVE_ENTRIES_OF_USERS = _entries_where(among(TimeEntry.user_id, IDS))
MOVE_ENTRIES_OF_TAGS = _entries_where(
    TimeEntry.id.in_(select(TimeEntryTag.entry_id).where(among(TimeEntryTag.tag_id, IDS)))
)
MOVE_ENTRIES_OF_CLIENTS = _entries_where(
    TimeEntry.project_id.in_(select(Project.id).where(among(Project.client_id, IDS)))
)
MOVE_PROJECTS_OF_CLIENTS = _at_change(
    _catalog_rows(
        SYNC_PROJECT,
        Project.__table__,
        Project.id,
        among(Project.client_id, IDS),
        Project.deleted_at.is_(None),
    )
)
MOVE_MEMBERS_OF_USERS = _at_change(
    _catalog_rows(
        SYNC_MEMBER,
        Membership.__table__,
        Membership.user_id,
        among(Membership.user_id, IDS),
        Membership.deleted_at.is_(None),
    )
)
# A member is their membership's user: gone or not as the membership is now (a change
# written without a payload, a seeded test row, moves it too).
MOVE_MEMBERS_OF_MEMBERSHIPS = _at_change(
    select(
        Membership.org_id,
        literal(SYNC_MEMBER),
        _EVERYONE,
        Membership.user_id,
        Membership.deleted_at.is_not(None),
    ).where(among(Membership.id, IDS))
)
_ENTITY_ROWS = _named_rows(sets_gone=True)
_SHOWING_ROWS = _named_rows(sets_gone=False)
_ENTRY_ROWS = _entry_rows()
_FORGET_ORGS = (
    delete(proj_sync_feed).where(among(proj_sync_feed.c.org_id, IDS)),
    delete(proj_sync_horizons).where(among(proj_sync_horizons.c.org_id, IDS)),
)


# --- What a batch moves -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Position:
    tx: int
    change_id: int
    at: datetime

    @classmethod
    def of(cls, change: ChangeRow) -> _Position:
        return cls(change.tx, change.id, change.created_at)

    @property
    def key(self) -> tuple[int, int]:
        return (self.tx, self.change_id)


_Key = tuple[uuid.UUID, str, uuid.UUID, uuid.UUID]  # org_id, kind, owner_id, entity_id
_Derived = list[tuple[_Position, Executable, list[uuid.UUID]]]


@dataclass
class _Moves:
    """A batch's moves: rows named one by one (with whether their entity is gone now; None
    keeps what the row says), entries by id (as their table has them now), statements
    deriving rows from the normalized tables (those that say whether an entity is gone
    apart: they run first, so that a later move of the same row in the batch, which keeps
    what the row says, finds it said), and organizations deleted (their rows go)."""

    rows: dict[_Key, tuple[_Position, bool | None]] = field(default_factory=dict)
    entries: dict[uuid.UUID, _Position] = field(default_factory=dict)
    entities: _Derived = field(default_factory=list)
    derived: _Derived = field(default_factory=list)
    gone_orgs: set[uuid.UUID] = field(default_factory=set)

    def row(
        self,
        at: _Position,
        org_id: Any,
        kind: str,
        entity_id: Any,
        *,
        owner_id: Any = EVERYONE,
        gone: bool | None = None,
    ) -> None:
        if org_id is None or entity_id is None:
            return
        key = (_uuid(org_id), kind, _uuid(owner_id), _uuid(entity_id))
        known = self.rows.get(key)
        if known is not None and at.key < known[0].key:
            return
        if gone is None and known is not None:
            gone = known[1]
        self.rows[key] = (at, gone)

    def entry(self, at: _Position, entry_id: Any) -> None:
        self.entries[_uuid(entry_id)] = at  # changes come in log order: the last one wins

    def derive(
        self, at: _Position, statement: Executable, *ids: Any, of_entities: bool = False
    ) -> None:
        moves = self.entities if of_entities else self.derived
        moves.append((at, statement, [_uuid(i) for i in ids]))

    def write(self, session: Session) -> None:
        _run(session, self.entities)
        if self.entries:
            ids = sorted(self.entries)  # one order for every batch: no deadlocks between them
            at = [self.entries[i] for i in ids]
            session.execute(_ENTRY_ROWS, {"entry_ids": ids, **_positions(at)})
        keys = sorted(self.rows)
        for statement, sets_gone in ((_ENTITY_ROWS, True), (_SHOWING_ROWS, False)):
            chosen = [key for key in keys if (self.rows[key][1] is not None) == sets_gone]
            if chosen:
                session.execute(statement, self._arrays(chosen))
        _run(session, self.derived)
        if self.gone_orgs:
            for statement in _FORGET_ORGS:
                session.execute(statement, {"ids": list(self.gone_orgs)})

    def _arrays(self, keys: list[_Key]) -> dict[str, list[Any]]:
        moved = [self.rows[key] for key in keys]
        return {
            "org_ids": [key[0] for key in keys],
            "kinds": [key[1] for key in keys],
            "owner_ids": [key[2] for key in keys],
            "entity_ids": [key[3] for key in keys],
            "gones": [bool(gone) for _, gone in moved],
            **_positions([at for at, _ in moved]),
        }


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _positions(at: list[_Position]) -> dict[str, list[Any]]:
    return {
        "txs": [str(p.tx) for p in at],
        "change_ids": [p.change_id for p in at],
        "ats": [p.at for p in at],
    }


def _run(session: Session, moves: _Derived) -> None:
    for at, statement, ids in moves:
        session.execute(
            statement, {"ids": ids, "tx": at.tx, "change_id": at.change_id, "at": at.at}
        )


def _state(change: ChangeRow, which: str) -> dict[str, Any]:
    state = change.payload.get(which)
    return state if isinstance(state, dict) else {}


def _values(change: ChangeRow, name: str) -> set[Any]:
    """The non-null values of `name` in the change's old and new states."""
    states = (_state(change, "old"), _state(change, "new"))
    return {state[name] for state in states if state.get(name) is not None}


def _changed(change: ChangeRow, *names: str) -> bool:
    """Whether an update changed one of `names` (creations and deletions did not)."""
    old, new = _state(change, "old"), _state(change, "new")
    return bool(old and new) and any(old.get(name) != new.get(name) for name in names)


def _collect(changes: Sequence[ChangeRow]) -> _Moves:
    moves = _Moves()
    for change in changes:
        at, org, entity_id = _Position.of(change), change.org_id, change.entity_id
        gone = change.op == "deleted"
        match change.entity:
            case "time_entry":
                moves.entry(at, entity_id)
                old_user = _state(change, "old").get("user_id")
                if old_user is not None and old_user != _state(change, "new").get("user_id"):
                    # Moved to another user: it left its former user's rows.
                    moves.row(at, org, SYNC_TIME_ENTRY, entity_id, owner_id=old_user, gone=True)
                for project_id in _values(change, "project_id"):
                    moves.row(at, org, SYNC_PROJECT, project_id)
                for task_id in _values(change, "task_id"):
                    moves.row(at, org, SYNC_TASK, task_id)
            case "project":
                moves.row(at, org, SYNC_PROJECT, entity_id, gone=gone)
                if _changed(change, "name", "color", "client_id"):
                    moves.derive(at, MOVE_ENTRIES_OF_PROJECTS, entity_id)
            case "client":
                moves.row(at, org, SYNC_CLIENT, entity_id, gone=gone)
                if _changed(change, "name"):
                    moves.derive(at, MOVE_PROJECTS_OF_CLIENTS, entity_id)
                    moves.derive(at, MOVE_ENTRIES_OF_CLIENTS, entity_id)
            case "task":
                moves.row(at, org, SYNC_TASK, entity_id, gone=gone)
                if _changed(change, "name"):
                    moves.derive(at, MOVE_ENTRIES_OF_TASKS, entity_id)
            case "tag":
                moves.row(at, org, SYNC_TAG, entity_id, gone=gone)
                if _changed(change, "name"):
                    moves.derive(at, MOVE_ENTRIES_OF_TAGS, entity_id)
            case "membership":
                moves.derive(at, MOVE_MEMBERS_OF_MEMBERSHIPS, entity_id, of_entities=True)
            case "user":
                if _changed(change, "full_name", "email"):
                    moves.derive(at, MOVE_MEMBERS_OF_USERS, entity_id)
                    moves.derive(at, MOVE_ENTRIES_OF_USERS, entity_id)
            case "team":
                moves.row(at, org, SYNC_TEAM, entity_id, gone=gone)
            case "team_member":
                moves.row(at, org, SYNC_TEAM, entity_id)  # its leads and member count
                for user_id in _values(change, "user_id"):
                    moves.row(at, org, SYNC_MEMBER, user_id)  # their teams
            case "organization" if gone:
                moves.gone_orgs.add(_uuid(entity_id))
    return moves


# --- Loading from the normalized tables -------------------------------------------------------


def _sources() -> tuple[tuple[str, Any, Any, Any], ...]:
    """(kind, table, owner, entity id) of each kind of entity."""
    return (
        (SYNC_TIME_ENTRY, TimeEntry.__table__, TimeEntry.user_id, TimeEntry.id),
        (SYNC_PROJECT, Project.__table__, _EVERYONE, Project.id),
        (SYNC_CLIENT, Client.__table__, _EVERYONE, Client.id),
        (SYNC_TASK, Task.__table__, _EVERYONE, Task.id),
        (SYNC_TAG, Tag.__table__, _EVERYONE, Tag.id),
        (SYNC_TEAM, Team.__table__, _EVERYONE, Team.id),
        (SYNC_MEMBER, Membership.__table__, _EVERYONE, Membership.user_id),
    )


def _live_entities(scoped: bool) -> Rows:
    """Every live entity of every live organization (of ORGS when `scoped`), at the start of
    the log: a feed loaded now has no history."""
    selects = []
    for kind, table, owner_id, entity_id in _sources():
        rows = (
            select(
                table.c.org_id,
                literal(kind).label("kind"),
                owner_id.label("owner_id"),
                entity_id.label("entity_id"),
                cast(literal("0"), Xid8()).label("tx"),
                literal(0, BigInteger).label("change_id"),
                false().label("gone"),
                func.now().label("changed_at"),
            )
            .join(
                Organization,
                and_(Organization.id == table.c.org_id, Organization.deleted_at.is_(None)),
            )
            .where(table.c.deleted_at.is_(None))
        )
        selects.append(rows.where(among(table.c.org_id, ORGS)) if scoped else rows)
    live = union_all(*selects).subquery("live")
    return select(*live.c)


def _horizons(scoped: bool) -> Rows:
    """Every live organization's horizon at the loading snapshot's xmin: the load has no
    tombstones, so a cursor from before it must start over; the changes from that xmin on
    are applied again after a rebuild (`restart_checkpoint`)."""
    rows = select(
        Organization.id.label("org_id"),
        SNAPSHOT_XMIN.label("tx"),
        literal(0, BigInteger).label("change_id"),
    ).where(Organization.deleted_at.is_(None))
    return rows.where(among(Organization.id, ORGS)) if scoped else rows


# --- Pruning tombstones -------------------------------------------------------------------------


def _prune_batch() -> Executable:
    """Delete a batch of the oldest tombstones changed before `before`; their positions."""
    feed = proj_sync_feed.c
    oldest = (
        select(feed.org_id, feed.kind, feed.owner_id, feed.entity_id)
        .where(feed.gone, feed.changed_at < bindparam("before", type_=DateTime(timezone=True)))
        .order_by(feed.changed_at)
        .limit(bindparam("batch_size", type_=BigInteger))
    )
    key = tuple_(feed.org_id, feed.kind, feed.owner_id, feed.entity_id)
    return (
        delete(proj_sync_feed)
        .where(key.in_(oldest))
        .returning(feed.org_id, feed.tx, feed.change_id)
    )


def _move_horizons() -> Executable:
    """Each organization's horizon to the given position, unless it is past it already."""
    rows = select(
        _array("org_ids", Uuid).label("org_id"),
        cast(_array("txs", Text), Xid8()).label("tx"),
        _array("change_ids", BigInteger).label("change_id"),
    )
    statement = postgresql.insert(proj_sync_horizons).from_select(
        ["org_id", "tx", "change_id"], rows
    )
    horizon, new = proj_sync_horizons.c, statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[horizon.org_id],
        set_={"tx": new.tx, "change_id": new.change_id},
        where=tuple_(horizon.tx, horizon.change_id) < tuple_(new.tx, new.change_id),
    )


_PRUNE_BATCH, _MOVE_HORIZONS = _prune_batch(), _move_horizons()


TOMBSTONE_BATCH = 5000


def prune_tombstones(session: Session, before: datetime, batch_size: int = TOMBSTONE_BATCH) -> int:
    """Delete one batch of tombstones changed before `before`; a cursor before the last of
    an organization's starts over from then on (its horizon). Returns how many went."""
    pruned = session.execute(_PRUNE_BATCH, {"before": before, "batch_size": batch_size}).all()
    last: dict[uuid.UUID, tuple[int, int]] = {}
    for org_id, tx, change_id in pruned:
        last[org_id] = max(last.get(org_id, (0, 0)), (int(tx), int(change_id)))
    if last:
        orgs = sorted(last)
        session.execute(
            _MOVE_HORIZONS,
            {
                "org_ids": orgs,
                "txs": [str(last[org][0]) for org in orgs],
                "change_ids": [last[org][1] for org in orgs],
            },
        )
    return len(pruned)


class SyncProjection(Projection):
    name = "sync"
    tables = (proj_sync_feed, proj_sync_horizons)

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        _collect(changes).write(session)

    def load(self, t: Tables, table: Table, *, scoped: bool = False) -> Executable:
        rows = _live_entities(scoped) if table is proj_sync_feed else _horizons(scoped)
        return fill(t[table], rows)

    def compared(self, t: Tables, table: Table) -> Rows | None:
        """What `verify` compares: which live entities have a live row. Positions and
        tombstones are history, which a recomputation cannot know; horizons likewise."""
        if table is not proj_sync_feed:
            return None
        feed = t[table]
        return select(feed.c.org_id, feed.c.kind, feed.c.owner_id, feed.c.entity_id).where(
            feed.c.gone.is_(False)
        )
