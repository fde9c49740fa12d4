"""The fixed-window counter kept in the process while Redis is down (pure rules: an
injected clock)."""

from __future__ import annotations

import threading

from shared.rate_limit import LocalRateLimiter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_attempt_past_the_limit_waits_for_the_end_of_the_window() -> None:
    clock = Clock(1_000_005.0)  # 5 s into a 10 s window
    limiter = LocalRateLimiter(clock=clock)
    assert [limiter.hit("k", 3, 10) for _ in range(3)] == [None, None, None]
    assert limiter.hit("k", 3, 10) == 5
    clock.now = 1_000_009.5
    assert limiter.hit("k", 3, 10) == 1
    assert limiter.hit("other", 3, 10) is None  # keys count apart


def test_a_new_window_starts_a_new_count() -> None:
    clock = Clock(960_000.0)  # a window starts here
    limiter = LocalRateLimiter(clock=clock)
    for _ in range(5):
        limiter.hit("k", 2, 60)
    clock.now += 60
    assert limiter.hit("k", 2, 60) is None
    assert limiter.hit("k", 2, 60) is None
    assert limiter.hit("k", 2, 60) == 60


def test_it_forgets_the_key_hit_least_recently_past_its_size() -> None:
    limiter = LocalRateLimiter(max_keys=2, clock=Clock(1_000_000.0))
    for key in ("a", "a", "b", "a", "c"):  # "b" is the least recently hit when "c" comes
        limiter.hit(key, 1, 60)
    assert len(limiter) == 2
    assert limiter.hit("a", 1, 60) is not None  # still counted
    assert limiter.hit("b", 1, 60) is None  # forgotten, counts afresh


def test_concurrent_attempts_are_each_counted() -> None:
    limiter = LocalRateLimiter(clock=Clock(1_000_000.0))
    refused: list[int | None] = []
    lock = threading.Lock()

    def attempt() -> None:
        for _ in range(500):
            result = limiter.hit("k", 1000, 60)
            with lock:
                refused.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in refused) == 8 * 500 - 1000
