"""`evotrack run` writes its logs in one format, the one LOG_JSON chooses, never mixed: with
LOG_JSON=true every line it and its children write is a JSON object with ts, level, logger
and msg; with LOG_JSON=false none is. Whatever writes them: the supervisor, the migrations,
uvicorn's parent and worker processes, the APIs, RQ, a Python warning, the traceback of a
child that crashed (it is restarted), a warning a child printed before it set up logging.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from evotrack.child_output import relay_output
from evotrack.embedded import EmbeddedRedis
from shared.supervision_metrics import SUPERVISOR_STATE_ENV
from tests.evotrack.test_run import (
    Run,
    kill_if_running,
    start_run,
    wait_for,
    wait_until_ready,
    worker_pid,
    write_and_read_back,
)

STARTUP_WARNING = "a warning printed before logging is set up"
FORCED_WARNING = "a warning forced by the test"
FORCED_CRASH = "a crash forced by the test"

# Loaded by every Python process of the run (PYTHONPATH); acts in the children only. A
# child warns at once, before it sets up its logging. SIGUSR2 makes it warn, then die of an
# uncaught exception as the interpreter has it die (the excepthook, exit code 1), whatever
# its main thread is doing (RQ's loop would catch an exception raised in it).
SITECUSTOMIZE = f"""
import os, signal, sys, warnings

if os.environ.get({SUPERVISOR_STATE_ENV!r}):
    warnings.warn({STARTUP_WARNING!r})

    def _warn_then_crash(signum, frame):
        warnings.warn({FORCED_WARNING!r})
        try:
            raise RuntimeError({FORCED_CRASH!r})
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
        os._exit(1)

    signal.signal(signal.SIGUSR2, _warn_then_crash)
"""


def json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def exercise(run: Run) -> None:
    """Requests of every kind, then a child's warning and crash, then a stop."""
    wait_until_ready(run)
    command = run.url(run.command_port, "")
    for path in ("/health", "/openapi.json", "/docs", "/no-such-endpoint", "/metrics"):
        httpx.get(command + path, timeout=30)
    httpx.post(command + "/api/v1/auth/login", content=b"{not json", timeout=30)
    write_and_read_back(run)  # the worker projects

    crashing = worker_pid(run)
    assert crashing is not None
    os.kill(crashing, signal.SIGUSR2)
    wait_for(lambda: "restarted worker" in run.output(), "a restart", run)
    write_and_read_back(run)  # the restarted worker projects

    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(60) == 0, run.output()


def start(tmp_path: Path, database: str, redis: EmbeddedRedis, *, log_json: bool) -> Run:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return start_run(
        tmp_path / "data",
        tmp_path / "run.log",
        DATABASE_URL=database,
        REDIS_URL=redis.url,
        LOG_JSON=str(log_json).lower(),
        API_WORKERS="2",  # uvicorn's parent process logs too
        PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    )


def test_with_log_json_every_line_is_a_json_record(
    tmp_path: Path, empty_database: str, own_redis: EmbeddedRedis
) -> None:
    run = start(tmp_path, empty_database, own_redis, log_json=True)
    try:
        exercise(run)
    finally:
        kill_if_running(run)
    lines = run.output().splitlines()
    assert [line for line in lines if json_object(line) is None] == []
    records = [json_object(line) or {} for line in lines]
    assert [r for r in records if not {"ts", "level", "logger", "msg"} <= r.keys()] == []

    def logged(logger: str, text: str) -> list[dict[str, Any]]:
        return [r for r in records if r["logger"] == logger and text in str(r["msg"])]

    assert logged("alembic.runtime.migration", "Running upgrade")
    assert logged("uvicorn.error", "Started parent process")  # uvicorn's parent, --workers 2
    assert logged("uvicorn.error", "Application startup complete")  # its workers
    assert logged("evotrack.http", "request")
    assert logged("rq.worker", "Listening on")
    assert logged("evotrack.run", "EvoTrack is running")  # the banner too
    assert logged("py.warnings", FORCED_WARNING)
    assert logged("evotrack.child", STARTUP_WARNING)  # printed, relayed as a record
    [crash] = logged("evotrack", "uncaught exception")
    assert f"RuntimeError: {FORCED_CRASH}" in crash["exc"]
    assert logged("evotrack.run", "died, exit code 1")
    assert logged("evotrack.run", "restarted worker")
    assert logged("evotrack.run", "stopped on SIGTERM")


def test_with_plain_text_logs_no_line_is_json(
    tmp_path: Path, empty_database: str, own_redis: EmbeddedRedis
) -> None:
    run = start(tmp_path, empty_database, own_redis, log_json=False)
    try:
        exercise(run)
    finally:
        kill_if_running(run)
    output = run.output()
    assert [line for line in output.splitlines() if json_object(line) is not None] == []
    for text in (
        "INFO alembic.runtime.migration Running upgrade",
        "INFO uvicorn.error Started parent process",
        "INFO evotrack.http request",
        "EvoTrack is running",
        "WARNING py.warnings",
        FORCED_WARNING,
        STARTUP_WARNING,
        "CRITICAL evotrack uncaught exception",
        f"RuntimeError: {FORCED_CRASH}",
        "died, exit code 1",
        "restarted worker",
        "stopped on SIGTERM",
    ):
        assert text in output, text


def test_the_relay_passes_json_lines_on_and_makes_records_of_the_rest(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    record = '{"ts": "t", "level": "INFO", "logger": "app", "msg": "a record"}'
    other_process = '{"ts": "t", "level": "INFO", "logger": "app", "msg": "mid-traceback"}'
    output = [
        record,
        "a line printed by a library",
        "Traceback (most recent call last):",
        '  File "app.py", line 1, in <module>',
        other_process,
        "ValueError: boom",
        "",
        "last words",
    ]
    caplog.set_level(logging.WARNING, logger="evotrack.child")
    relay_output("worker", io.BytesIO("\n".join(output).encode() + b"\n")).join()

    assert capsys.readouterr().err.splitlines() == [record, other_process]
    relayed = [
        (r.levelname, r.getMessage(), getattr(r, "exc", None), getattr(r, "child", None))
        for r in caplog.records
        if r.name == "evotrack.child"
    ]
    traceback = "\n".join([output[2], output[3], output[5]])
    assert relayed == [
        ("WARNING", "a line printed by a library", None, "worker"),
        ("ERROR", "ValueError: boom", traceback, "worker"),
        ("WARNING", "last words", None, "worker"),
    ]
