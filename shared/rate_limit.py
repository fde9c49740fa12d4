"""Fixed-window attempt counting: the rule both rate limiters share, and the counter kept in
this process that stands in for Redis while it is unreachable.

`shared.redis_client.hit_rate_limit` counts in Redis, shared by every process. When Redis
is down it counts here instead, so that the sign-in limits still hold during an outage
(per process: under N uvicorn workers a client gets at most N times the limit) rather than
failing open.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

# Keys a process remembers while Redis is down (one small entry each, a few MB at most).
# Past it the key hit least recently is forgotten first: an old window's count, usually.
LOCAL_MAX_KEYS = 20_000


def window_of(now: float, window_seconds: int) -> int:
    """The fixed window `now` (Unix seconds) falls in."""
    return int(now // window_seconds)


def seconds_to_wait(count: int, limit: int, now: float, window_seconds: int) -> int | None:
    """Seconds until the window of `now` ends when `count` attempts exceed `limit`, else
    None (the attempt is allowed)."""
    if count <= limit:
        return None
    return window_seconds - int(now) % window_seconds


class LocalRateLimiter:
    """Fixed-window counters per key in memory: bounded in size, safe across threads (the
    thread pool of sync endpoints calls it concurrently)."""

    def __init__(
        self, max_keys: int = LOCAL_MAX_KEYS, clock: Callable[[], float] = time.time
    ) -> None:
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (window, attempts in it), least recently hit first.
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        """Count one attempt against `key`; return seconds to wait when over the limit."""
        now = self._clock()
        window = window_of(now, window_seconds)
        with self._lock:
            counted_window, count = self._counts.pop(key, (window, 0))
            count = count + 1 if counted_window == window else 1
            self._counts[key] = (window, count)
            if len(self._counts) > self._max_keys:
                self._counts.popitem(last=False)
        return seconds_to_wait(count, limit, now, window_seconds)

    def __len__(self) -> int:
        return len(self._counts)


LOCAL_RATE_LIMITER = LocalRateLimiter()
