"""A full rebuild of every projection in a process of its own, so that B6 can sample the
worker's memory (`python -m bench.rebuild_child`, DATABASE_URL set). Prints one JSON
object: the total seconds and how long each step took."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from projections.rebuild import CONNECTIONS, rebuild
from projections.registry import PROJECTIONS
from shared.db import make_engine


@dataclass
class StepClock:
    """The `(step, done, total)` callback of projections.rebuild, timing each step: a call
    marks the end of the previous step and the start of the named one."""

    projection: str
    steps: list[tuple[str, float]] = field(default_factory=list)
    _current: str | None = None
    _since: float = 0.0

    def __call__(self, step: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if self._current is not None:
            self.steps.append((f"{self.projection}: {self._current}", now - self._since))
        self._current, self._since = step, now


def main() -> int:
    engine = make_engine(os.environ["DATABASE_URL"], pool_size=CONNECTIONS, max_overflow=0)
    sessions = sessionmaker(bind=engine)
    steps: list[tuple[str, float]] = []
    started = time.perf_counter()
    for projector in PROJECTIONS:
        clock = StepClock(projector.name)
        rebuild(sessions, projector.name, clock)
        steps += clock.steps
    seconds = time.perf_counter() - started
    engine.dispose()
    json.dump({"seconds": seconds, "steps": steps}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
