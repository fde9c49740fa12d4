"""What every benchmark gets: where the data are, how many, how often to repeat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


PROFILES = {
    "quick": Profile("quick", 1_000_000, 3),
    "full": Profile("full", 10_000_000, 3),
}


@dataclass
class Context:
    database_url: str
    redis_url: str
    profile: Profile
    entries: int
    org_ids: list[str]

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
