"""What a projection is (DESIGN.md §4 and §10): one read model, declared as one object.

A `Projection` names its tables (the `Table` objects of projections/models.py, in the
order a rebuild loads them), says how each table is filled from the source of truth (or
from the tables loaded before it), keeps itself up to date batch by batch (`apply`), and
carries its rebuild plan. The runner, rebuild, verify, status, the worker and the CLI all
read `projections.registry.PROJECTIONS` and nothing else.

Statements are SQLAlchemy Core built from the declared tables, with columns matched by
name (`fill`). A rebuild or a verification runs the same statements against copies of the
tables (`Tables`), so one definition serves the live update, the rebuild and the check.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Executable,
    Insert,
    MetaData,
    Select,
    SQLColumnExpression,
    Table,
    Uuid,
    any_,
    bindparam,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

# SQLAlchemy reports an INSERT's row count only when asked to.
PRESERVE_ROWCOUNT = {"preserve_rowcount": True}

# The organizations a scoped load or verification covers, bound as `orgs`.
ORGS: BindParameter[Sequence[Any]] = bindparam("orgs", type_=ARRAY(Uuid))
# The keys (entry ids, notification ids …) a batch re-derives, bound as `ids`.
IDS: BindParameter[Sequence[Any]] = bindparam("ids", type_=ARRAY(Uuid))


def among(
    column: SQLColumnExpression[Any], values: BindParameter[Sequence[Any]]
) -> ColumnElement[bool]:
    """`column = ANY(:values)`: one statement text whatever the number of values."""
    return column == any_(values)


@dataclass(frozen=True)
class ChangeRow:
    """One row of the change log, as the runner hands it to a projection."""

    id: int
    tx: int
    org_id: Any
    entity: str
    entity_id: Any
    op: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Tables:
    """The physical tables statements write and read: the live ones, or a rebuild's
    (`__new`) or a verification's (`__verify`) copies of them."""

    suffix: str = ""

    def __getitem__(self, table: Table) -> Table:
        return _copy(table, self.suffix) if self.suffix else table


LIVE = Tables()


@functools.cache
def _copy(table: Table, suffix: str) -> Table:
    # Columns only: the copy's DDL (defaults, storage, indexes) comes from the live table.
    columns = [Column(c.name, c.type, key=c.key) for c in table.columns]
    return Table(f"{table.name}{suffix}", MetaData(), *columns)


def fill(target: Table, rows: Select[*tuple[Any, ...]]) -> Insert:
    """`INSERT INTO target (…) SELECT …`, the columns named by the select's labels."""
    return insert(target).from_select([column.name for column in rows.selected_columns], rows)


@dataclass(frozen=True)
class RebuildPlan:
    """How a rebuild loads a projection beyond "one table after another, in one session".

    `lanes`: the tables after the first that parallel sessions may load once the first
    is committed, each lane in order; every table but the first is in exactly one lane.
    `first_parts`: with lanes, the first table's load split over this many sessions on
    one snapshot (`Projection.load_part`). `read_order`: the order readers read the
    tables in, where it matters: the swap locks them in it, so that it queues behind such
    readers instead of closing a cycle with them."""

    lanes: tuple[tuple[Table, ...], ...] = ()
    first_parts: int = 1
    read_order: tuple[Table, ...] = ()


class Projection(ABC):
    """One read model. `apply` must be idempotent: re-applying a change changes nothing."""

    name: str
    tables: ClassVar[tuple[Table, ...]]  # in the order a rebuild loads them
    plan: ClassVar[RebuildPlan] = RebuildPlan()
    # The projections whose tables `apply` reads: it is handed a change only once they
    # have all applied it (the runner holds it back at the oldest of their checkpoints).
    follows: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        """Bring the tables up to date with a batch of changes, in the caller's transaction."""

    @abstractmethod
    def load(self, t: Tables, table: Table, *, scoped: bool = False) -> Executable:
        """The statement filling `t[table]` from the source of truth (or from the tables
        before it in `tables`, read through `t` too); `scoped` limits it to ORGS."""

    def load_part(self, t: Tables, index: int, parts: int) -> Executable:
        """Part `index` of `parts` of the first table's full load (see RebuildPlan)."""
        raise NotImplementedError(f"{self.name} does not load its first table in parts")

    def compared(self, t: Tables, table: Table) -> Select[Any] | None:
        """What `verify` compares of `t[table]`: all of it, unless the table holds history a
        recomputation cannot know (then a part of it, or None: nothing)."""
        return select(t[table])

    def in_scope(self, table: Table) -> ColumnElement[bool]:
        """The rows of `table` that belong to the organizations in ORGS."""
        return among(table.c.org_id, ORGS)

    @property
    def lock_order(self) -> tuple[Table, ...]:
        return self.plan.read_order or self.tables
