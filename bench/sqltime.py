"""Where the database time goes: total time per SQL statement on an engine, to point a
benchmark's notes at the statements worth fixing."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

WIDTH = 110


class StatementTimes:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def top(self, count: int = 3) -> list[tuple[str, float, int]]:
        ranked = sorted(self.seconds.items(), key=lambda item: -item[1])[:count]
        return [(sql, seconds, self.calls[sql]) for sql, seconds in ranked]

    def describe(self, count: int = 3) -> str:
        return "; ".join(
            f"`{sql}` {seconds:.1f} s in {calls} calls" for sql, seconds, calls in self.top(count)
        )


@contextmanager
def statement_times(engine: Engine) -> Iterator[StatementTimes]:
    """Time every statement executed on `engine` inside the block."""
    times = StatementTimes()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = " ".join(statement.split())[:WIDTH]
        times.seconds[key] += time.perf_counter() - conn.info.pop("bench_started")
        times.calls[key] += 1

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
