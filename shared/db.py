"""Engines and sessions. The write side and the read side have different session types."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import BindParameter, DateTime, Engine, MetaData, bindparam, create_engine, func
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
)

from shared.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """One metadata for write and read tables: one linear Alembic history."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class Versioned(TimestampMixin):
    """`version` counts the writes of a row (API.md, "Versions and conditional writes"): 1
    when inserted, one more with every UPDATE the ORM flushes (SQLAlchemy's version counter,
    which also refuses to write over a version it did not read). A Core UPDATE of the row
    sets `version = version + 1` itself. The new `updated_at` comes back in the UPDATE's
    RETURNING (`eager_defaults`), not in another SELECT."""

    version: Mapped[int] = mapped_column(nullable=False, server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version, "eager_defaults": True}

    def touch(self) -> None:
        """Write the row even though none of its columns changed (its links did: tags,
        team members), so that its version and `updated_at` move."""
        self.updated_at = func.now()


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


def to_sqlalchemy_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    return create_engine(
        to_sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


@lru_cache
def write_engine() -> Engine:
    settings = get_settings()
    return make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )


@lru_cache
def read_engine() -> Engine:
    settings = get_settings()
    engine = make_engine(
        settings.read_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    return engine.execution_options(postgresql_readonly=True)


class WriteSession(Session):
    """A session that may write: used by the command API and the workers."""


class ReadSession(Session):
    """A session of the query API: its transactions are read-only."""


@lru_cache
def write_sessionmaker() -> sessionmaker[WriteSession]:
    return sessionmaker(bind=write_engine(), class_=WriteSession, expire_on_commit=False)


@lru_cache
def read_sessionmaker() -> sessionmaker[ReadSession]:
    return sessionmaker(bind=read_engine(), class_=ReadSession, expire_on_commit=False)


def read_session() -> Iterator[ReadSession]:
    with read_sessionmaker()() as session:
        yield session


# The type of a uuid[] parameter (`bindparam("ids", type_=UUIDS)` in a statement built once).
UUIDS = ARRAY(UUID(as_uuid=True))


def uuid_array(ids: Iterable[uuid.UUID]) -> BindParameter[Any]:
    """Ids as one uuid[] parameter, for `column == any_(uuid_array(ids))`: one statement
    text whatever their number, and one value to dump, where an expanding `IN` renders a
    parameter per id into a new statement text (a bulk create names hundreds of users)."""
    return bindparam(None, list(ids), type_=UUIDS)


def copy_rows(
    session: Session,
    copy_statement: str,
    rows: Iterable[Sequence[Any]],
    binary_types: Sequence[str] = (),
) -> None:
    """`COPY … FROM STDIN` inside the session's transaction: for batches, where psycopg
    formats rows in C and an INSERT of arrays spends its time dumping them in Python.
    With `binary_types` (the columns' types, for a `(FORMAT BINARY)` statement) ids and
    instants go as bytes: about half the client time of text for entry rows.

    Errors come out as SQLAlchemy's (IntegrityError for a violated constraint…), as they
    would from `session.execute`, so that callers and error handlers see one kind."""
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    try:
        with driver.cursor() as cursor, cursor.copy(copy_statement) as copy:
            if binary_types:
                copy.set_types(binary_types)
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        raise DBAPIError.instance(copy_statement, None, exc, psycopg.Error) from exc
