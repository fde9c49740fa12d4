"""What every benchmark gets: where the data are, how many, how often to repeat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bench.report import Outcome
from shared.db import make_engine


@dataclass(frozen=True)
class Profile:
    name: str
    entries: int
    runs: int  # repetitions whose median is reported
    load_seconds: float = 3.0  # one run of a closed-loop load (B1)
    lag_seconds: float = 5.0  # one steady load level of B3
    report_entries: tuple[int, ...] = ()  # B4 also at these sizes, each in a database of its own


PROFILES = {
    "quick": Profile("quick", 1_000_000, 3),
    "full": Profile(
        "full",
        10_000_000,
        3,
        load_seconds=10.0,
        lag_seconds=20.0,
        report_entries=(100_000, 1_000_000),
    ),  # fmt: skip
}


@dataclass
class Context:
    database_url: str
    redis_url: str
    profile: Profile
    entries: int
    org_ids: list[str]
    # Figures a benchmark leaves for a later one (B3 loads at a share of B1's maximum).
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def runs(self) -> int:
        return self.profile.runs

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.database_url, pool_size=4, max_overflow=4)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return sessionmaker(bind=self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


Benchmark = Callable[[Context], Outcome]
