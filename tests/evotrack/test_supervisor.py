"""The supervisor's restart rule, on real child processes with an injected clock: a child
that dies is started again after a doubling delay; one that keeps dying right after its
start makes the supervisor give up; restarts are counted for /metrics."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from evotrack.run import _watch
from evotrack.supervisor import ChildKeepsDying, ChildSpec, RestartPolicy, Supervisor
from shared.supervision_metrics import (
    SUPERVISOR_STATE_ENV,
    ChildRestartCollector,
    read_restart_counts,
)

EXITS_AT_ONCE = ChildSpec("quitter", [sys.executable, "-c", "import sys; sys.exit(3)"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def supervisor(clock: FakeClock, state_path: Path | None = None) -> Supervisor:
    return Supervisor(dict(os.environ), stop_timeout_seconds=5, clock=clock, state_path=state_path)


def die_and_tend(sup: Supervisor, clock: FakeClock, up_seconds: float) -> float:
    """Let the only child exit after `up_seconds` (by the clock); the delay it was given."""
    child = sup.children[0]
    child.process.wait(timeout=60)
    clock.now += up_seconds
    sup.tend()
    assert child.restart_at is not None
    return child.restart_at - clock.now


def restart(sup: Supervisor, clock: FakeClock, delay: float) -> None:
    child = sup.children[0]
    dead = child.process
    clock.now += delay - 0.01
    sup.tend()
    assert child.process is dead  # not before its delay is over
    clock.now += 0.01
    sup.tend()
    assert child.process is not dead
    assert child.restart_at is None


def test_a_child_that_keeps_dying_at_start_makes_the_supervisor_give_up(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    sup = supervisor(clock, tmp_path / "state.json")
    sup.start(EXITS_AT_ONCE)
    try:
        delays = []
        for _ in range(4):
            delays.append(die_and_tend(sup, clock, up_seconds=1))
            restart(sup, clock, delays[-1])
        assert delays == [0.5, 1.0, 2.0, 4.0]
        assert read_restart_counts(tmp_path / "state.json") == {"quitter": 4}
        sup.children[0].process.wait(timeout=60)
        clock.now += 1
        with pytest.raises(ChildKeepsDying, match=r"quitter keeps dying at start \(5 times"):
            sup.tend()
    finally:
        sup.stop()


def test_the_delay_doubles_up_to_its_cap_for_a_child_that_dies_after_starting(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    sup = supervisor(clock)
    sup.start(EXITS_AT_ONCE)
    try:
        delays = []
        for _ in range(9):
            # Up past its start, not long enough to count as stable: never a give-up.
            delays.append(die_and_tend(sup, clock, up_seconds=20))
            restart(sup, clock, delays[-1])
        assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
        assert sup.children[0].restarts == 9
    finally:
        sup.stop()


def test_a_child_that_stayed_up_starts_again_from_the_first_delay(tmp_path: Path) -> None:
    clock = FakeClock()
    sup = supervisor(clock)
    sup.start(EXITS_AT_ONCE)
    try:
        for expected in (0.5, 1, 2, 4):
            assert die_and_tend(sup, clock, up_seconds=1) == expected
            restart(sup, clock, expected)
        assert die_and_tend(sup, clock, up_seconds=RestartPolicy().stable_after_seconds) == 0.5
        restart(sup, clock, 0.5)
        # The deaths at start before it stayed up no longer count towards giving up.
        for expected in (1, 2, 4, 8):
            assert die_and_tend(sup, clock, up_seconds=1) == expected
            restart(sup, clock, expected)
    finally:
        sup.stop()


def test_run_stops_with_1_and_says_why_when_a_child_keeps_dying_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Real clock and real waits, kept tiny; a long start window makes every death count
    # as a death at start however slow the machine is.
    policy = RestartPolicy(first_delay_seconds=0.01, startup_seconds=3600, max_deaths_at_start=3)
    sup = Supervisor(dict(os.environ), stop_timeout_seconds=5, policy=policy)
    sup.start(EXITS_AT_ONCE)
    try:
        with caplog.at_level(logging.INFO, logger="evotrack.run"):
            assert _watch(sup, [], "banner") == 1
    finally:
        sup.stop()
    assert "quitter keeps dying at start (3 times in a row, the last with exit code 3)" in (
        caplog.text
    )
    assert "died, exit code 3" in caplog.text
    assert "restarted quitter" in caplog.text


def test_restart_counts_are_exposed_as_a_counter_per_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"command API": 0, "worker": 2}')
    registry = CollectorRegistry()
    registry.register(ChildRestartCollector())

    monkeypatch.setenv(SUPERVISOR_STATE_ENV, str(state))
    exposition = generate_latest(registry).decode()
    assert 'evotrack_child_restarts_total{child="command API"} 0.0' in exposition
    assert 'evotrack_child_restarts_total{child="worker"} 2.0' in exposition

    state.write_text("not json")  # a scrape reports what it can, and does not fail
    assert "evotrack_child_restarts" not in generate_latest(registry).decode()
    monkeypatch.delenv(SUPERVISOR_STATE_ENV)  # not under `evotrack run`: nothing to say
    assert "evotrack_child_restarts" not in generate_latest(registry).decode()
