"""`python -m bench.hops`: what one thread hop costs (issue 15, point 2).

16 tasks on uvloop (as uvicorn runs the APIs) each hop to a worker thread and back with a
function that does nothing, through anyio's `to_thread.run_sync` (Starlette's
`run_in_threadpool`) and through `shared.threads.in_thread` (the loop's executor),
alternating, three runs each. Prints the hops a second and the process's CPU a hop.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread
import uvloop

from shared.threads import in_thread

TASKS = 16
HOPS_PER_TASK = 500
RUNS = 3


def _nothing() -> None:
    return None


async def _anyio_hop() -> None:
    await anyio.to_thread.run_sync(_nothing)


async def _in_thread_hop() -> None:
    await in_thread(_nothing)


async def _run(hop: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    async def task() -> None:
        for _ in range(HOPS_PER_TASK):
            await hop()

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    hops = TASKS * HOPS_PER_TASK
    return hops / (time.perf_counter() - started), (time.process_time() - cpu) / hops


def main() -> None:
    kinds = {"anyio `to_thread.run_sync`": _anyio_hop, "`shared.threads.in_thread`": _in_thread_hop}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in kinds}
    for _ in range(RUNS):
        for name, hop in kinds.items():
            results[name].append(uvloop.run(_run(hop)))
    print(f"| hop ({TASKS} tasks, medians of {RUNS} runs) | hops/s | CPU a hop |")
    print("|---|---|---|")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"| {name} | {rate:,.0f} | {cpu * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
