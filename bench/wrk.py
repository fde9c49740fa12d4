"""HTTP load from wrk, a compiled load generator (Debian package `wrk`): it costs a small
fraction of a core, so a benchmark measures the server, not the client.

Each connection is a wrk thread of its own (`-t N -c N`) that sends its own list of
requests in turn, so a connection can stand for one user (its token) or for a client
writing as several. The Lua script is generated: the requests are data in it, and `done`
prints the figures as JSON. Any non-2xx answer or socket error fails the run: a benchmark
that counts errors as throughput measures nothing.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WRK = "wrk"
MARKER = "WRK-RESULT "


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None = None


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    p50: float  # seconds
    p99: float
    client_cpu_seconds: float  # user + system time of the wrk process

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def client_cores(self) -> float:
        """How many cores the load generator kept busy, on average."""
        return self.client_cpu_seconds / self.seconds if self.seconds > 0 else 0.0


def available() -> bool:
    return shutil.which(WRK) is not None


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def _lua_request(request: Request) -> str:
    headers = ", ".join(
        f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in request.headers.items()
    )
    body = _lua_string(request.body) if request.body is not None else "nil"
    return (
        f"wrk.format({_lua_string(request.method)}, {_lua_string(request.path)}, "
        f"{{{headers}}}, {body})"
    )


def _request_list(requests: Sequence[Request]) -> str:
    return "return {\n" + ",\n".join(_lua_request(r) for r in requests) + "\n}\n"


# Each thread loads only its own list (a thread's Lua state runs the whole main script).
SCRIPT = f"""
local directory = os.getenv("WRK_REQUESTS")
local count = 0

function setup(thread)
  count = count + 1
  thread:set("index", count)
end

function init(args)
  mine = dofile(directory .. "/" .. index .. ".lua")
  next_request = 0
end

function request()
  next_request = next_request % #mine + 1
  return mine[next_request]
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write("{MARKER}" .. string.format(
    '{{"requests": %d, "micros": %d, "p50": %d, "p99": %d, "status": %d, "socket": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end
"""


def run(root: str, per_connection: Sequence[Sequence[Request]], seconds: float) -> WrkRun:
    """Load `root` (http://host:port) for `seconds` with one connection per request list."""
    connections = len(per_connection)
    with tempfile.TemporaryDirectory() as directory:
        for index, requests in enumerate(per_connection, start=1):
            (Path(directory) / f"{index}.lua").write_text(_request_list(requests))
        script = Path(directory) / "load.lua"
        script.write_text(SCRIPT)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        finished = subprocess.run(
            [WRK, f"-t{connections}", f"-c{connections}", f"-d{seconds:g}s"]
            + ["--timeout", "10s", "-s", str(script), root],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "WRK_REQUESTS": directory},
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = _figures(finished)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkRun(
        requests=figures["requests"],
        seconds=figures["micros"] / 1e6,
        p50=figures["p50"] / 1e6,
        p99=figures["p99"] / 1e6,
        client_cpu_seconds=cpu,
    )


def _figures(finished: subprocess.CompletedProcess[str]) -> dict[str, int]:
    lines = [line for line in finished.stdout.splitlines() if line.startswith(MARKER)]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(
            f"wrk failed ({finished.returncode}): {finished.stderr or finished.stdout}"
        )
    figures: dict[str, int] = json.loads(lines[-1].removeprefix(MARKER))
    if figures["status"] or figures["socket"]:
        raise RuntimeError(
            f"wrk saw {figures['status']} non-2xx answers and {figures['socket']} socket errors"
            f" in {figures['requests']} requests"
        )
    return figures
