"""The runner's guarantees on the real database: the watermark never skips a late commit,
a batch and its checkpoint commit together, a poison change is set aside."""

from __future__ import annotations

import threading
import time
import typing
import uuid
from collections.abc import Callable, Sequence

import pytest
from sqlalchemy import ColumnClause, Engine, Executable, Table, literal_column, select, text
from sqlalchemy.orm import Session, sessionmaker

from projections.projection import ChangeRow, Projection, Tables
from projections.runner import (
    advance,
    checkpoint_position,
    fetch_changes,
    pending_changes,
    prune_change_log,
    restart_checkpoint,
)

P = typing.TypeVar("P", bound=Projection)


def named(projection: type[P], name: str) -> type[P]:
    """`projection` under a name of its own: a checkpoint no other test shares."""
    return typing.cast(type[P], type(projection.__name__, (projection,), {"name": name}))


class BareProjection(Projection):
    """Declares no tables: the runner only needs `name` and `apply`; nothing rebuilds it."""

    tables: typing.ClassVar[tuple[Table, ...]] = ()

    def load(self, t: Tables, table: Table, *, scoped: bool = False) -> Executable:
        raise NotImplementedError("a test projection is never rebuilt")


class RecordingProjection(BareProjection):
    """Applies the changes of one test's entity kind into `runner_test_applied`."""

    def __init__(self, entity: str, poison: set[str] | None = None) -> None:
        self.entity = entity
        self.poison = poison or set()

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        for change in changes:
            if change.entity != self.entity:
                continue
            if change.payload.get("label") in self.poison:
                raise ValueError(f"cannot project {change.payload['label']}")
            session.execute(
                text(
                    "INSERT INTO runner_test_applied (projection, change_id, label)"
                    " VALUES (:p, :c, :l)"
                ),
                {"p": self.name, "c": change.id, "l": change.payload.get("label")},
            )


def recording(entity: str, poison: set[str] | None = None) -> RecordingProjection:
    return named(RecordingProjection, f"test-{entity}")(entity, poison)


@pytest.fixture(scope="module")
def sessions(db: Engine) -> sessionmaker[Session]:
    with db.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS runner_test_applied ("
                " projection text, change_id bigint, label text,"
                " PRIMARY KEY (projection, change_id))"
            )
        )
    return sessionmaker(bind=db)


def write_change(conn: object, entity: str, label: str) -> None:
    conn.execute(  # type: ignore[attr-defined]
        text(
            "INSERT INTO changes (entity, entity_id, op, payload)"
            " VALUES (:e, :id, 'created', jsonb_build_object('label', CAST(:l AS text)))"
        ),
        {"e": entity, "id": uuid.uuid4(), "l": label},
    )


def advance_until(
    sessions: sessionmaker[Session],
    projector: RecordingProjection,
    done: Callable[[], bool],
    batch_size: int = 1000,
) -> None:
    """Advance until `done()` holds. Other test workers share the cluster, and any open
    transaction anywhere holds the watermark back for a moment: wait, don't flake."""
    deadline = time.monotonic() + 60  # bounds a failure only
    while True:
        advance(sessions, projector, batch_size=batch_size)
        if done() or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def applied_labels(db: Engine, projector: RecordingProjection) -> list[str]:
    with db.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT label FROM runner_test_applied WHERE projection = :p ORDER BY change_id"
                ),
                {"p": projector.name},
            ).scalars()
        )


def test_a_change_committed_late_is_not_skipped(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    entity = f"gap-{uuid.uuid4().hex[:8]}"
    projector = recording(entity)
    slow = db.connect()
    slow_tx = slow.begin()
    write_change(slow, entity, "slow")  # takes its id (and xid) first, commits last
    for label in ("a", "b"):
        with db.begin() as conn:
            write_change(conn, entity, label)

    advance(sessions, projector)
    # The slow transaction is still open: nothing at or after its xid may be read yet.
    assert applied_labels(db, projector) == []

    slow_tx.commit()
    slow.close()
    advance_until(sessions, projector, lambda: len(applied_labels(db, projector)) == 3)
    assert sorted(applied_labels(db, projector)) == ["a", "b", "slow"]


def test_small_batches_and_repeated_wakeups_apply_each_change_once(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    entity = f"batch-{uuid.uuid4().hex[:8]}"
    projector = recording(entity)
    with db.begin() as conn:
        for i in range(25):
            write_change(conn, entity, f"c{i}")
    advance_until(
        sessions, projector, lambda: len(applied_labels(db, projector)) >= 25, batch_size=4
    )
    assert sorted(applied_labels(db, projector)) == sorted(f"c{i}" for i in range(25))


def test_concurrent_wakeups_never_apply_a_change_twice(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    entity = f"conc-{uuid.uuid4().hex[:8]}"
    projector = recording(entity)
    with db.begin() as conn:
        for i in range(200):
            write_change(conn, entity, f"c{i}")
    errors: list[BaseException] = []

    def wake() -> None:
        try:
            for _ in range(5):
                advance(sessions, projector, batch_size=7)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=wake) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    advance_until(sessions, projector, lambda: len(applied_labels(db, projector)) >= 200)
    assert errors == []
    labels = applied_labels(db, projector)
    assert len(labels) == 200  # the primary key would have refused a double apply anyway
    assert set(labels) == {f"c{i}" for i in range(200)}


def test_a_poison_change_is_dead_lettered_and_the_rest_flow(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    entity = f"poison-{uuid.uuid4().hex[:8]}"
    projector = recording(entity, poison={"bad"})
    with db.begin() as conn:
        for label in ("one", "bad", "two", "three"):
            write_change(conn, entity, label)
    advance_until(sessions, projector, lambda: len(applied_labels(db, projector)) >= 3)
    assert sorted(applied_labels(db, projector)) == ["one", "three", "two"]
    with db.connect() as conn:
        dead = (
            conn.execute(
                text("SELECT error FROM projection_dead_letters WHERE projection = :p"),
                {"p": projector.name},
            )
            .scalars()
            .all()
        )
        last_error = conn.execute(
            text("SELECT last_error FROM projection_checkpoints WHERE name = :p"),
            {"p": projector.name},
        ).scalar_one()
    assert len(dead) == 1
    assert "cannot project bad" in dead[0]
    assert "cannot project bad" in last_error
    # Later changes keep flowing past the dead letter.
    with db.begin() as conn:
        write_change(conn, entity, "four")
    advance_until(sessions, projector, lambda: "four" in applied_labels(db, projector))
    assert "four" in applied_labels(db, projector)


def test_the_watermark_passes_a_write_once_it_is_projected(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    entity = f"wm-{uuid.uuid4().hex[:8]}"
    projector = recording(entity)
    with db.begin() as conn:
        write_change(conn, entity, "x")
        own_xid = int(conn.execute(text("SELECT pg_current_xact_id()::text")).scalar_one())

    def watermark() -> int:
        with db.connect() as conn:
            return int(
                conn.execute(
                    text("SELECT watermark::text FROM projection_checkpoints WHERE name = :p"),
                    {"p": projector.name},
                ).scalar_one()
            )

    advance_until(sessions, projector, lambda: watermark() > own_xid)
    assert watermark() > own_xid
    assert applied_labels(db, projector) == ["x"]


def _write_at(
    session: Session, entity: str, label: str, *, tx: int | None = None, age_days: int = 0
) -> int:
    """A change row with a transaction id (else the session's own) and an age of the test's
    choosing."""
    return int(
        session.execute(
            text(
                "INSERT INTO changes (tx, entity, entity_id, op, payload, created_at)"
                " VALUES (COALESCE(CAST(:tx AS xid8), pg_current_xact_id()), :e, :id, 'created',"
                " jsonb_build_object('label', CAST(:l AS text)), now() - make_interval(days => :d))"
                " RETURNING id"
            ),
            {
                "tx": None if tx is None else str(tx),
                "e": entity,
                "id": uuid.uuid4(),
                "l": label,
                "d": age_days,
            },
        ).scalar_one()
    )


def test_the_watermark_query_orders_by_transaction_id_not_by_its_digits(db: Engine) -> None:
    """Across a power of ten ('10' < '9' as text) the log is still read in xid order: a
    batch that read 10 first would save a checkpoint past 9, and 9 would never be read."""
    entity = f"order-{uuid.uuid4().hex[:8]}"
    with Session(db) as session:  # rolled back: no other test sees these ids
        nine = _write_at(session, entity, "nine", tx=9)
        ten = _write_at(session, entity, "ten", tx=10)
        assert [c.id for c in fetch_changes(session, (8, 0), 11, 1)] == [nine]
        assert [(c.tx, c.id) for c in fetch_changes(session, (8, 0), 11, 5)] == [
            (9, nine),
            (10, ten),
        ]
        assert fetch_changes(session, (9, nine), 10, 5) == []  # 10 is not below the xmin
        session.rollback()


def test_the_checkpoint_helpers_of_rebuild_and_budget_alerts(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    entity = f"helpers-{uuid.uuid4().hex[:8]}"
    projector = recording(entity)
    with sessions() as session:
        assert checkpoint_position(session, projector.name) == (0, 0)
        assert pending_changes(session, projector.name) == 0  # no checkpoint, nothing pending
    with db.begin() as conn:
        write_change(conn, entity, "x")
    advance_until(sessions, projector, lambda: applied_labels(db, projector) == ["x"])
    with sessions() as session, session.begin():
        tx, change_id = checkpoint_position(session, projector.name)
        assert tx > 0
        assert change_id > 0
        watermark = session.execute(
            text("SELECT watermark::text FROM projection_checkpoints WHERE name = :p"),
            {"p": projector.name},
        ).scalar_one()
        restart_checkpoint(session, projector.name, tx)
        assert checkpoint_position(session, projector.name) == (tx, 0)
        assert pending_changes(session, projector.name) >= 1  # the change of `tx`, again
        # The watermark never moves back: tokens it covered stay covered.
        assert session.execute(
            text("SELECT watermark::text FROM projection_checkpoints WHERE name = :p"),
            {"p": projector.name},
        ).scalar_one() == str(max(int(watermark), tx))
    with sessions() as session, session.begin():
        fresh = f"test-fresh-{uuid.uuid4().hex[:8]}"
        restart_checkpoint(session, fresh, 7)  # a projection without a checkpoint gets one
        assert checkpoint_position(session, fresh) == (7, 0)


def test_pruning_keeps_what_a_projection_has_not_passed_and_what_is_dead_lettered(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    entity = f"prune-{uuid.uuid4().hex[:8]}"
    projector = recording(entity, poison={"bad"})
    with sessions() as session, session.begin():
        old = _write_at(session, entity, "old", age_days=30)
        bad = _write_at(session, entity, "bad", age_days=30)
    with db.begin() as conn:
        write_change(conn, entity, "new")
    advance_until(sessions, projector, lambda: "new" in applied_labels(db, projector))

    def remaining() -> set[int]:
        with db.connect() as conn:
            return set(
                conn.execute(
                    text("SELECT id FROM changes WHERE entity = :e AND id = ANY(:ids)"),
                    {"e": entity, "ids": [old, bad]},
                ).scalars()
            )

    not_started = f"test-not-started-{uuid.uuid4().hex[:8]}"
    with sessions() as session, session.begin():
        assert prune_change_log(session, [projector.name, not_started], 7) == 0
    assert remaining() == {old, bad}
    with sessions() as session, session.begin():
        assert prune_change_log(session, [projector.name], 7, batch_size=100000) >= 1
    assert remaining() == {bad}  # old and passed: pruned; dead-lettered: kept for `retry`


def test_a_projection_that_follows_others_never_overtakes_them(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    """`follows`: the webhooks projection reads what catalog and entries wrote, so it is
    handed a change only once they have applied it, and its watermark stays behind."""
    leader = recording("follows-leader")
    follower_type = named(RecordingProjection, "test-follows-follower")
    follower_type.follows = (leader.name,)
    follower = follower_type("follows-leader")
    with db.begin() as conn:
        write_change(conn, "follows-leader", "first")
    advance_until(sessions, leader, lambda: applied_labels(db, leader) == ["first"])
    with db.begin() as conn:
        write_change(conn, "follows-leader", "second")
    advance(sessions, follower)
    assert applied_labels(db, follower) == ["first"]  # "second" waits for the leader
    with sessions() as session:
        assert checkpoint_position(session, follower.name) == checkpoint_position(
            session, leader.name
        )
    advance_until(sessions, leader, lambda: applied_labels(db, leader) == ["first", "second"])
    advance_until(sessions, follower, lambda: applied_labels(db, follower) == ["first", "second"])


class DriverRefusedProjection(RecordingProjection):
    """Its poison is a statement the driver refuses before the server sees it."""

    def apply(self, session: Session, changes: Sequence[ChangeRow]) -> None:
        for change in changes:
            if change.entity == self.entity and change.payload.get("label") in self.poison:
                one: ColumnClause[int] = literal_column("1")
                session.execute(select(one).where(one.in_(list(range(70_000)))))
        super().apply(session, [c for c in changes if c.payload.get("label") not in self.poison])


def test_a_statement_the_driver_refuses_is_a_poison_not_a_transient_error(
    db: Engine, sessions: sessionmaker[Session]
) -> None:
    """More than 65,535 parameters: psycopg raises an OperationalError, which is not the
    database going away. Retried as transient, the batch would stall the projection for
    ever; it is bisected and the one change set aside."""
    projector = named(DriverRefusedProjection, "test-driver-refused")(
        "driver-refused", poison={"huge"}
    )
    with db.begin() as conn:
        for label in ("before", "huge", "after"):
            write_change(conn, "driver-refused", label)
    advance_until(sessions, projector, lambda: applied_labels(db, projector) == ["before", "after"])
    with db.connect() as conn:
        errors = (
            conn.execute(
                text("SELECT error FROM projection_dead_letters WHERE projection = :p"),
                {"p": projector.name},
            )
            .scalars()
            .all()
        )
    assert len(errors) == 1
    assert "OperationalError" in errors[0]
