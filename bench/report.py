"""The results table, the machine's description and `bench/results/latest.md`."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"
DASH = "—"


@dataclass(frozen=True)
class Row:
    """One line of the table. `met` is None for figures given for information only."""

    benchmark: str
    figure: str
    reference: str = DASH
    ratio: str = DASH
    target: str = DASH
    met: bool | None = None


@dataclass
class Outcome:
    """What one benchmark reports: table rows, and notes (how it was measured, details)."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` (0..1) percentile, linearly interpolated between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float) -> str:
    """Milliseconds, with a decimal below 10 ms."""
    value = seconds * 1000
    return f"{value:.1f} ms" if value < 10 else f"{value:,.0f} ms"


def rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "∞"


def times(value: float) -> str:
    return f"{value:.2f}×"


def verdict(met: bool | None) -> str:
    return DASH if met is None else "yes" if met else "**no**"


def table(rows: Sequence[Row]) -> str:
    header = "| benchmark | figure | floor / ceiling | ratio | target | met? |"
    lines = [header, "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.benchmark} | {r.figure} | {r.reference} | {r.ratio} | {r.target} | "
        f"{verdict(r.met)} |"
        for r in rows
    ]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=RESULTS.parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(
    postgres: dict[str, str], redis_version: str, embedded: bool, load_at_start: str
) -> list[str]:
    """The machine, as bullet lines."""
    settings = ", ".join(f"{k} {v}" for k, v in postgres.items() if k != "version")
    where = "embedded (own cluster in .evotrack/bench)" if embedded else "DATABASE_URL's server"
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} cores (logical)",
        f"RAM: {psutil.virtual_memory().total / 2**30:.1f} GiB",
        f"PostgreSQL {postgres.get('version', '?')}, {where}; {settings}",
        f"Redis {redis_version}",
        f"Python {platform.python_version()} on {platform.platform()}",
        f"Load average (1, 5, 15 min) at start {load_at_start}, at the end {load_average()}"
        " — anything else running on the machine lowers the figures",
        f"Commit {git_commit()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    ]


def document(
    profile: str, entries: int, rows: Sequence[Row], notes: Sequence[str], machine: list[str]
) -> str:
    parts = [
        f"# EvoTrack benchmarks — profile `{profile}`, {entries:,} entries",
        "",
        table(rows),
        "",
        "## Machine",
        "",
        *[f"- {line}" for line in machine],
        "",
        "## How each figure was measured",
        "",
        *[f"- {note}" for note in notes],
        "",
        "Reproduce: `make bench` (quick profile) or `make bench-full`; "
        "`python -m bench --help` for options.",
        "",
    ]
    return "\n".join(parts)


def write(text: str, name: str = "latest.md") -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    return path
