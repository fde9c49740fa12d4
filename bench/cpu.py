"""Where the CPU went during a measurement, in cores busy: the API process, PostgreSQL (the
postmaster and its children, when the server runs on this machine), this process (the
load generator) and the whole machine. On two cores this tells who the bottleneck is.
A process that ends during the block is not counted: the figures are approximate."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
import psycopg

from bench.generate import plain_url


def postmaster(database_url: str) -> psutil.Process | None:
    """The server's main process, when it runs here (the parent of our backend)."""
    try:
        with psycopg.connect(plain_url(database_url)) as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
        return psutil.Process(int(row[0])).parent() if row else None
    except (psycopg.Error, psutil.Error):
        return None


def _family(root: psutil.Process) -> dict[int, psutil.Process]:
    try:
        return {p.pid: p for p in [root, *root.children(recursive=True)]}
    except psutil.Error:
        return {}


def _seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return float(times.user + times.system)
    except psutil.Error:
        return 0.0


@dataclass
class CpuUse:
    """Cores busy on average, by name (filled when the measured block ends)."""

    cores: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        return ", ".join(f"{name} {value:.2f}" for name, value in self.cores.items())


@contextlib.contextmanager
def cpu_use(
    processes: dict[str, psutil.Process], server: psutil.Process | None = None
) -> Iterator[CpuUse]:
    """Measure the block: each named process, PostgreSQL's processes, this process, all."""
    use = CpuUse()
    me = psutil.Process(os.getpid())
    # A named process counts with its children (an API's uvicorn worker processes).
    families = {name: _family(p) for name, p in processes.items()}
    before = {name: {pid: _seconds(p) for pid, p in f.items()} for name, f in families.items()}
    pg_before = {pid: _seconds(p) for pid, p in _family(server).items()} if server else {}
    me_before = _seconds(me)
    machine_before = psutil.cpu_times()
    started = time.perf_counter()
    yield use
    wall = max(time.perf_counter() - started, 1e-9)
    for name, family in families.items():
        spent = sum(_seconds(p) - before[name].get(pid, 0.0) for pid, p in family.items())
        use.cores[name] = spent / wall
    if server is not None:
        pg_seconds = sum(
            _seconds(p) - pg_before.get(pid, 0.0) for pid, p in _family(server).items()
        )
        use.cores["PostgreSQL"] = pg_seconds / wall
    use.cores["load generator"] = (_seconds(me) - me_before) / wall
    after = psutil.cpu_times()
    idle = (after.idle - machine_before.idle) + (
        getattr(after, "iowait", 0.0) - getattr(machine_before, "iowait", 0.0)
    )
    use.cores["machine"] = max(psutil.cpu_count() or 1, 1) - idle / wall
