"""The child processes of `evotrack run`: started together, watched, stopped in order.

A child that dies is started again after a delay that doubles with each death in a row
(0.5 s up to 30 s, from 0.5 s again once it has stayed up a minute), while the others
keep serving; only a child that keeps dying right after its start makes the supervisor
give up. Each child runs in its own session, so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children (SIGTERM, a bounded wait, SIGKILL) before the servers they
use. On Linux a child also gets SIGTERM if the supervisor itself dies.

With `relay_output` (JSON logs) the children's stdout and stderr go through the supervisor,
which makes every line of them a JSON record (evotrack/child_output.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from evotrack.child_output import relay_output
from evotrack.embedded import die_with_parent
from shared.supervision_metrics import write_restart_counts

log = logging.getLogger("evotrack.run")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# How long a stop waits for the last lines of the children it stopped.
RELAY_DRAIN_SECONDS = 5.0


class StopRequested(BaseException):
    """SIGTERM or SIGINT reached the supervisor; raised wherever it was waiting.

    A BaseException like KeyboardInterrupt, so no `except Exception` on the way swallows it.
    """


class StopSignals:
    """The first SIGTERM/SIGINT raises StopRequested; once the stop has begun, another
    one only makes it hurry (SIGKILL at once instead of waiting for the children)."""

    def __init__(self) -> None:
        self.hurry = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._raise_stop)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def stopping(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._hurry_up)

    def _raise_stop(self, signum: int, _: FrameType | None) -> None:
        raise StopRequested(signal.Signals(signum).name)

    def _hurry_up(self, signum: int, _: FrameType | None) -> None:
        log.warning("%s again: killing what is left", signal.Signals(signum).name)
        self.hurry = True


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    env: Mapping[str, str] = field(default_factory=dict)  # on top of the supervisor's


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that died is started again, and when the supervisor gives up on it."""

    first_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    # A child that ran this long before dying starts again from the first delay.
    stable_after_seconds: float = 60.0
    # A death this soon after a start is a failure to start (bad config, port taken)...
    startup_seconds: float = 10.0
    # ...and this many of them in a row will not get better by trying again.
    max_deaths_at_start: int = 5

    def delay_seconds(self, deaths_in_a_row: int) -> float:
        doubled = self.first_delay_seconds * 2.0 ** (deaths_in_a_row - 1)
        return min(doubled, self.max_delay_seconds)


class ChildKeepsDying(Exception):
    """A child died right after its start too many times in a row: time to stop all."""


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit code {returncode}"


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    started_at: float
    restarts: int = 0
    deaths_in_a_row: int = 0  # since it last stayed up stable_after_seconds
    deaths_at_start: int = 0  # in a row, each within startup_seconds of its start
    restart_at: float | None = None  # set while it waits out its delay

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def send(self, signum: int) -> None:
        """Signal the child's process group: it and anything it started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


@dataclass
class Supervisor:
    env: Mapping[str, str]
    stop_timeout_seconds: float = 10.0
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    # Where the restart counts go for the APIs' /metrics (shared.supervision_metrics).
    state_path: Path | None = None
    clock: Callable[[], float] = field(default_factory=lambda: time.monotonic)
    # The children's output through the supervisor (JSON logs) instead of its own terminal.
    relay_output: bool = False
    children: list[Child] = field(default_factory=list)
    _relays: list[threading.Thread] = field(default_factory=list)

    def start(self, spec: ChildSpec) -> Child:
        child = Child(spec, self._spawn(spec), self.clock())
        log.info("started %s (pid %d)", spec.name, child.process.pid)
        self.children.append(child)
        self._write_state()
        return child

    def tend(self) -> None:
        """Notice the children that died and start again those whose delay is over.

        Raises ChildKeepsDying when one has died right after its start too often."""
        now = self.clock()
        for child in self.children:
            if child.restart_at is None and not child.running:
                self._schedule_restart(child, now)
            if child.restart_at is not None and now >= child.restart_at:
                self._restart(child, now)

    def _spawn(self, spec: ChildSpec) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            spec.argv,
            env={**self.env, **spec.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.relay_output else None,
            stderr=subprocess.STDOUT if self.relay_output else None,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        if process.stdout is not None:
            self._relays = [relay for relay in self._relays if relay.is_alive()]
            self._relays.append(relay_output(spec.name, process.stdout))
        return process

    def _schedule_restart(self, child: Child, now: float) -> None:
        # What it started may outlive it (uvicorn's worker processes, holding the port).
        child.send(signal.SIGKILL)
        up_seconds = now - child.started_at
        ended = how_it_ended(child.process.returncode)
        if up_seconds >= self.policy.stable_after_seconds:
            child.deaths_in_a_row = 0
        child.deaths_in_a_row += 1
        at_start = up_seconds < self.policy.startup_seconds
        child.deaths_at_start = child.deaths_at_start + 1 if at_start else 0
        if child.deaths_at_start >= self.policy.max_deaths_at_start:
            raise ChildKeepsDying(
                f"{child.name} keeps dying at start ({child.deaths_at_start} times in a row, "
                f"the last with {ended}): stopping everything"
            )
        delay = self.policy.delay_seconds(child.deaths_in_a_row)
        child.restart_at = now + delay
        log.error(
            "%s (pid %d) died, %s, after %.1f s; restarting it in %.1f s",
            child.name, child.process.pid, ended, up_seconds, delay,
        )  # fmt: skip

    def _restart(self, child: Child, now: float) -> None:
        child.process = self._spawn(child.spec)
        child.started_at = now
        child.restart_at = None
        child.restarts += 1
        self._write_state()  # before the log line: whoever reads it finds /metrics agree
        log.warning(
            "restarted %s (pid %d), restart %d", child.name, child.process.pid, child.restarts
        )

    def _write_state(self) -> None:
        if self.state_path is not None:
            write_restart_counts(self.state_path, {c.name: c.restarts for c in self.children})

    def stop(self, hurry: Callable[[], bool] = lambda: False) -> None:
        """SIGTERM every child, wait up to the timeout, then SIGKILL the rest."""
        running = [child for child in self.children if child.running]
        for child in running:
            log.info("stopping %s (pid %d)", child.name, child.process.pid)
            child.send(signal.SIGTERM)
        self._wait(running, hurry)
        for child in running:
            if child.running:
                log.warning("%s is still running: killing it", child.name)
                child.send(signal.SIGKILL)
        for child in self.children:
            child.process.wait()
        deadline = time.monotonic() + RELAY_DRAIN_SECONDS
        for relay in self._relays:
            relay.join(max(0.0, deadline - time.monotonic()))

    def _wait(self, children: Sequence[Child], hurry: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.stop_timeout_seconds
        while any(child.running for child in children):
            if hurry() or time.monotonic() > deadline:
                return
            time.sleep(0.05)
