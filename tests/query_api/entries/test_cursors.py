"""Keyset cursors: a walk visits every entry exactly once, among ties and while entries are
being added; a forged, garbled or foreign cursor is a 422 naming `cursor`."""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from tests.conftest import BackgroundProjector
from tests.factories import add_member, make_org
from tests.query_api.entries.helpers import Client, at, error_field, iso, span


def _entries_at(starts: list[str], *, hours: int = 9) -> list[dict[str, Any]]:
    return [
        {
            "start_at": iso(at(day, hours)),
            "end_at": iso(at(day, hours) + timedelta(minutes=30)),
            "description": f"#{i}",
        }
        for i, day in enumerate(starts)
    ]


def test_a_walk_among_ties_visits_every_entry_once_in_both_orders(
    client: Client, db: Engine
) -> None:
    # 3 instants shared by 15 entries each (two users, overlaps allowed), plus loners.
    other = add_member(db, client.org, "member")
    days = ["2026-11-02"] * 15 + ["2026-11-03"] * 15 + ["2026-11-04"] * 15
    ids = client.bulk(_entries_at(days))
    ids += client.bulk([{**e, "user_id": str(other.id)} for e in _entries_at(days[:10])])
    ids += [client.entry(at("2026-11-01", 7), 60), client.entry(at("2026-11-05", 7), 60)]

    for sort in ("-start_at", "start_at"):
        walked = client.walk(sort=sort, page_size=4)
        assert len(walked) == len(ids) == 57
        assert set(walked) == set(ids)
        # The walk's order is the listing's order.
        assert walked == client.ids(sort=sort)


def test_a_cursor_page_has_no_total_and_follows_the_numbered_page(client: Client) -> None:
    client.bulk(_entries_at(["2026-11-02"] * 5))
    first = client.get("/time-entries", page_size=2).json()
    cursor = first["pagination"]["next_cursor"]
    assert first["pagination"]["total"] == 5
    second = client.get("/time-entries", page_size=2, cursor=cursor).json()
    numbered = client.get("/time-entries", page_size=2, page=2).json()

    assert second["data"] == numbered["data"]
    assert second["pagination"]["total"] is None
    assert second["pagination"]["total_pages"] is None
    assert second["pagination"]["has_next"] is True
    assert second["pagination"]["has_previous"] is True
    last = client.get(
        "/time-entries", page_size=2, cursor=second["pagination"]["next_cursor"]
    ).json()
    assert len(last["data"]) == 1
    assert last["pagination"]["has_next"] is False
    assert last["pagination"]["next_cursor"] is None


def test_entries_added_during_a_walk_never_repeat_or_hide_others(client: Client) -> None:
    days = ["2026-11-02"] * 8 + ["2026-11-03"] * 8 + ["2026-11-04"] * 8
    original = set(client.bulk(_entries_at(days)))
    seen: list[uuid.UUID] = []
    cursor = None
    added: set[uuid.UUID] = set()
    for round_ in range(100):
        response = client.get("/time-entries", page_size=3, cursor=cursor)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(uuid.UUID(e["id"]) for e in body["data"])
        cursor = body["pagination"]["next_cursor"]
        if cursor is None:
            break
        # New entries at the instants of existing ones (they interleave with the ties by
        # id), newer than everything, and older than everything so far.
        older = at("2026-10-31", 12) - timedelta(minutes=round_)
        added.update(
            client.bulk(
                [
                    *_entries_at([days[round_ % len(days)], "2026-11-06"]),
                    {"start_at": iso(older), "end_at": iso(older + timedelta(seconds=30))},
                ]
            )
        )
    counts = Counter(seen)
    assert max(counts.values()) == 1  # nothing twice
    assert original <= set(seen)  # everything that existed when the walk began, once
    assert set(seen) - original <= added
    # Entries older than the walk's position are all reached, newer ones never.
    older_added = set(client.ids(to="2026-10-31"))
    assert len(older_added) >= 8
    assert older_added <= set(seen)
    assert not set(client.ids(**span("2026-11-06"))) & set(seen)


def test_the_detailed_report_walks_with_cursors_too(client: Client) -> None:
    ids = client.bulk(_entries_at(["2026-11-02"] * 7 + ["2026-11-03"] * 4))
    walked = client.walk("/reports/detailed", page_size=3, **span("2026-11-01", "2026-11-30"))
    assert sorted(walked, key=str) == sorted(ids, key=str)
    assert len(walked) == len(set(walked))


def _tampered(cursor: str) -> str:
    body, signature = cursor.split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    forged = payload.replace(b"2026-11-0", b"2025-11-0")
    assert forged != payload
    return base64.urlsafe_b64encode(forged).rstrip(b"=").decode() + "." + signature


def test_forged_garbled_and_foreign_cursors_are_422s(
    client: Client,
    api: httpx.Client,
    qapi: httpx.Client,
    db: Engine,
    projector_running: BackgroundProjector,
) -> None:
    client.bulk(_entries_at(["2026-11-02", "2026-11-03", "2026-11-04"]))
    cursor = client.get("/time-entries", page_size=1).json()["pagination"]["next_cursor"]
    elsewhere = Client(api, qapi, make_org(db))
    elsewhere.bulk(_entries_at(["2026-11-02", "2026-11-03"]))
    foreign = elsewhere.get("/time-entries", page_size=1).json()["pagination"]["next_cursor"]
    client.token = elsewhere.token  # later than every write of both

    for bad in (
        _tampered(cursor),
        cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB"),
        "garbage",
        "a.b.c",
        "",
        foreign,
    ):
        response = client.get("/time-entries", cursor=bad or "=")
        assert error_field(response) == "cursor", bad
    # Issued for the other order.
    assert error_field(client.get("/time-entries", cursor=cursor, sort="start_at")) == "cursor"
    assert error_field(client.get("/time-entries", cursor="x" * 1001)) == "cursor"
    # The genuine one still works.
    assert client.get("/time-entries", cursor=cursor).status_code == 200
