"""The APIs' thread hop: `await in_thread(function, *args)` runs blocking database work off
the event loop.

The event loop's own executor costs less than half the CPU of Starlette's
`run_in_threadpool` (anyio's `to_thread.run_sync`) per hop (`python -m bench.hops`).
Like anyio's, a hop is not abandoned
when the awaiting task is cancelled: the cancellation waits for the function to return,
so that a request's session is never used by its thread and by the loop at once. The
function runs in a copy of the caller's context (the request id of the log lines). The
threads are as many as the database pool's connections (see `_executor`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import ParamSpec, TypeVar

from shared.config import get_settings

P = ParamSpec("P")
T = TypeVar("T")


@lru_cache
def _executor() -> ThreadPoolExecutor:
    """As many threads as the database pool keeps connections (`DB_POOL_SIZE`); requests
    beyond them wait on the loop. With more threads than that, the extra requests take
    overflow connections, which the pool closes when they come back: each of them would
    pay for starting a PostgreSQL backend (bench/results/issue15-ab.md)."""
    return ThreadPoolExecutor(max_workers=get_settings().db_pool_size, thread_name_prefix="db")


async def in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in a worker thread; its result or its exception."""
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    future = asyncio.get_running_loop().run_in_executor(_executor(), call)
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True  # ours: wait for the function all the same, then pass it on
        except BaseException:
            pass  # the function's own error: `result()` raises it below
    if cancelled:
        raise asyncio.CancelledError
    return future.result()
