"""The APIs' thread hop: `await in_thread(function, *args)` runs blocking database work off
the event loop.

Starlette's `run_in_threadpool` (anyio's `to_thread.run_sync`) costs about 55 µs of CPU a
hop on the development machine, the event loop's own executor about 19 µs
(`python -m bench.hops`); a command makes three hops. Like anyio's, a hop is not abandoned
when the awaiting task is cancelled: the cancellation waits for the function to return,
so that a request's session is never used by its thread and by the loop at once. The
function runs in a copy of the caller's context (the request id of the log lines).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# As many threads as anyio's default limit: more requests than this wait for a thread.
MAX_THREADS = 40
_EXECUTOR = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="in_thread")


async def in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in a worker thread; its result or its exception."""
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    future = asyncio.get_running_loop().run_in_executor(_EXECUTOR, call)
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
