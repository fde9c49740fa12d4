"""The child processes of `evotrack run`: started together, watched, stopped in order.

Each child runs in its own session, so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children (SIGTERM, a bounded wait, SIGKILL) before the servers they
use. On Linux a child also gets SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from evotrack.embedded import die_with_parent

log = logging.getLogger("evotrack.run")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

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
    children: list[Child] = field(default_factory=list)

    def start(self, spec: ChildSpec) -> Child:
        process = subprocess.Popen(
            spec.argv,
            env={**self.env, **spec.env},
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        log.info("started %s (pid %d)", spec.name, process.pid)
        child = Child(spec.name, process)
        self.children.append(child)
        return child

    def first_exited(self) -> Child | None:
        return next((child for child in self.children if not child.running), None)

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

    def _wait(self, children: Sequence[Child], hurry: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.stop_timeout_seconds
        while any(child.running for child in children):
            if hurry() or time.monotonic() > deadline:
                return
            time.sleep(0.05)
