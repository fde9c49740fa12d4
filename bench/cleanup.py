"""Leave the data as generated: what a benchmark wrote goes away after it, so the next run
(`--reuse`) finds exactly the generated entries and B4 measures them, not B1's leftovers.

An entry no projection has seen is removed with its change rows, as if never written. An
entry already projected is removed from the normalized tables with a 'deleted' change row
in the same transaction, and the projections are brought up to date: they re-derive it
from the source of truth and drop it. No projection may run meanwhile (the worker is
stopped): an entry projected between the check and the delete would stay behind.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import redis
from rq import Queue

from bench.context import Context
from bench.generate import plain_url
from projections.registry import PROJECTIONS
from projections.runner import advance
from shared.config import get_settings
from shared.redis_client import pending_key

# A 'deleted' change row per projected entry, its `old` values as the command logs them.
DELETED_CHANGES = """
    INSERT INTO changes (org_id, entity, entity_id, op, payload)
    SELECT e.org_id, 'time_entry', e.entry_id, 'deleted', jsonb_build_object(
        'old', jsonb_build_object('user_id', e.user_id, 'project_id', e.project_id,
            'task_id', e.task_id, 'billable', e.billable, 'start_at', e.start_at,
            'end_at', e.end_at, 'duration_seconds', e.duration_seconds,
            'hourly_rate', e.hourly_rate_amount, 'amount', e.amount,
            'tag_ids', to_jsonb(e.tag_ids), 'description', e.description),
        'new', NULL)
    FROM proj_entries e WHERE e.entry_id = ANY(%s::uuid[])
"""


def last_change_id(database_url: str) -> int:
    """The newest change row now: what a benchmark writes comes after it."""
    with psycopg.connect(plain_url(database_url)) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()
    return int(row[0]) if row else 0


def forget_entries(ctx: Context, entry_ids: Sequence[object], since_change: int) -> None:
    """Remove the entries `entry_ids` (written after change row `since_change`)."""
    if not entry_ids:
        return
    ids = [str(entry_id) for entry_id in entry_ids]
    with psycopg.connect(plain_url(ctx.database_url)) as conn:
        projected = [
            str(row[0])
            for row in conn.execute(
                "SELECT entry_id FROM proj_entries WHERE entry_id = ANY(%s::uuid[])", (ids,)
            )
        ]
        seen = set(projected)
        unseen = [entry_id for entry_id in ids if entry_id not in seen]
        conn.execute("DELETE FROM time_entries WHERE id = ANY(%s::uuid[])", (ids,))
        conn.execute(
            "DELETE FROM changes WHERE id > %s AND entity = 'time_entry'"
            " AND entity_id = ANY(%s::uuid[])",
            (since_change, unseen),
        )
        conn.execute(DELETED_CHANGES, (projected,))
        conn.commit()
    if projected:
        catch_up(ctx)


def catch_up(ctx: Context) -> None:
    """Bring every projection to the current watermark, in this process."""
    for projector in PROJECTIONS:
        advance(ctx.sessions, projector)


def empty_wakeup_queue(ctx: Context) -> None:
    """Drop the wake-up job the commands enqueued while no worker ran, and its pending flag
    (so the next write rings again)."""
    connection = redis.Redis.from_url(ctx.redis_url)
    queue = get_settings().wakeup_queue
    Queue(queue, connection=connection).empty()  # type: ignore[no-untyped-call]
    connection.delete(pending_key(queue))
