"""`in_thread`: results, errors, the caller's context, and no abandoned work on cancel."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from shared.threads import in_thread

REQUEST = contextvars.ContextVar("request", default="none")


def test_the_result_and_the_error_come_back_from_another_thread() -> None:
    async def main() -> None:
        assert await in_thread(threading.get_ident) != threading.get_ident()
        assert await in_thread(sum, [1, 2], start=3) == 6
        with pytest.raises(ZeroDivisionError):
            await in_thread(divmod, 1, 0)

    asyncio.run(main())


def test_the_function_sees_the_callers_context() -> None:
    async def main() -> str:
        REQUEST.set("r-1")
        return await in_thread(REQUEST.get)

    assert asyncio.run(main()) == "r-1"


def test_a_cancelled_hop_waits_for_its_function_before_the_cancellation() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def work() -> None:
        started.set()
        release.wait(timeout=30)
        finished.append("done")

    async def main() -> None:
        task = asyncio.create_task(in_thread(work))
        while not started.is_set():
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        assert not task.done()  # still waiting for the function
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == ["done"]

    asyncio.run(main())
