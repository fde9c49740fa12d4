"""Jobs for the worker benchmarks."""

from __future__ import annotations


def noop() -> None:
    """Does nothing: what is left is RQ's own cost per job."""
    return None
