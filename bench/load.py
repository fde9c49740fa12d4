"""Load for the HTTP benchmarks, generated in this process by threads: a closed loop (each
client sends its next request as soon as the last one answered) and a steady open loop
(requests due at a fixed rate, whatever the answers), with every operation's latency.

A client is a `Step`: one operation (an HTTP request on the client's own keep-alive
connection, or a transaction on its own database connection). Any failure stops the run:
a benchmark that counts errors as throughput measures nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench.report import percentile

Step = Callable[[], object]
START_GRACE_SECONDS = 0.05  # lets every thread reach the start line


@dataclass(frozen=True)
class LoadRun:
    operations: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


class _Clients:
    """What the threads of one run share."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = steps
        self.latencies: list[list[float]] = [[] for _ in steps]
        self.finished = [0.0] * len(steps)
        self.errors: list[BaseException] = []
        self.go = threading.Event()
        self.start = 0.0

    def timed(self, index: int) -> None:
        began = time.perf_counter()
        self.steps[index]()
        ended = time.perf_counter()
        self.latencies[index].append(ended - began)
        self.finished[index] = ended

    def run(self, drive: Callable[[int], None]) -> LoadRun:
        def guarded(index: int) -> None:
            self.go.wait()
            try:
                drive(index)
            except BaseException as exc:  # reported by the caller, with the others
                self.errors.append(exc)

        threads = [
            threading.Thread(target=guarded, args=(i,), daemon=True) for i in range(len(self.steps))
        ]
        for thread in threads:
            thread.start()
        time.sleep(START_GRACE_SECONDS)
        self.start = time.perf_counter()
        self.go.set()
        for thread in threads:
            thread.join()
        if self.errors:
            raise self.errors[0]
        latencies = [value for client in self.latencies for value in client]
        end = max(self.finished, default=self.start)
        return LoadRun(len(latencies), max(end - self.start, 0.0), latencies)


def closed_loop(steps: Sequence[Step], seconds: float) -> LoadRun:
    """Each client repeats its step until `seconds` have passed (the last one finishes)."""
    clients = _Clients(steps)

    def drive(index: int) -> None:
        deadline = clients.start + seconds
        while time.perf_counter() < deadline:
            clients.timed(index)

    return clients.run(drive)


def steady(steps: Sequence[Step], per_second: float, seconds: float) -> LoadRun:
    """`per_second × seconds` operations, the k-th due at start + k / per_second, taken by
    whichever client is free. When every client is busy the load falls behind: the
    returned rate says what was achieved."""
    clients = _Clients(steps)
    total = max(1, round(per_second * seconds))
    slots = itertools.count()
    lock = threading.Lock()

    def drive(index: int) -> None:
        while True:
            with lock:
                slot = next(slots)
            if slot >= total:
                return
            wait = clients.start + slot / per_second - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            clients.timed(index)

    return clients.run(drive)


@contextlib.contextmanager
def http_clients(root: str, count: int) -> Iterator[list[httpx.Client]]:
    """`count` clients, each with one keep-alive connection of its own."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                httpx.Client(base_url=root, timeout=60.0, limits=httpx.Limits(max_connections=1))
            )
            for _ in range(count)
        ]


def expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} "
            f"(expected {status}): {response.text[:300]}"
        )
    return response


def data_of(response: httpx.Response) -> Any:
    return response.json()["data"]
