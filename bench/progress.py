"""A small progress bar on stderr: redrawn in place on a terminal, a line per tenth
otherwise (so logs of `make bench` in CI stay short)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
REDRAW_SECONDS = 0.1


class ProgressBar:
    def __init__(
        self, label: str, total: int, unit: str = "entries", stream: TextIO | None = None
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self.done = 0
        self._drawn_at = 0.0
        self._tenth = -1
        self._tty = self.stream.isatty()

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        now = time.perf_counter()
        tenth = done * 10 // self.total
        if self._tty and now - self._drawn_at >= REDRAW_SECONDS:
            self._drawn_at = now
            self.stream.write("\r" + self._line(now, note) + "\x1b[K")
            self.stream.flush()
        elif not self._tty and tenth > self._tenth and done < self.total:
            self._tenth = tenth
            self.stream.write(self._line(now, note) + "\n")
            self.stream.flush()

    def say(self, note: str) -> None:
        """Draw the bar with `note` now: what a long step after the last update is doing."""
        line = self._line(time.perf_counter(), note)
        self.stream.write(("\r" + line + "\x1b[K") if self._tty else line + "\n")
        self.stream.flush()

    def close(self, note: str = "") -> None:
        line = self._line(time.perf_counter(), note)
        self.stream.write(("\r" + line + "\x1b[K\n") if self._tty else line + "\n")
        self.stream.flush()

    def _line(self, now: float, note: str) -> str:
        share = min(self.done / self.total, 1.0)
        filled = int(share * WIDTH)
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        bar = "#" * filled + "-" * (WIDTH - filled)
        text = (
            f"{self.label} [{bar}] {share:4.0%} {self.done:,}/{self.total:,} {self.unit}"
            f"  {rate:,.0f}/s  {elapsed:.1f}s"
        )
        return f"{text}  {note}" if note else text


class StepProgress:
    """The `(step, done, total)` callback of projections.rebuild, drawn as a bar."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.bar: ProgressBar | None = None

    def __call__(self, step: str, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = ProgressBar(self.label, total, unit="steps", stream=self.stream)
        if done >= total:
            self.bar.done = done
            self.bar.close(step)
        else:
            self.bar.update(done, step)
