"""The output of `evotrack run`'s children when the logs are JSON lines.

A child logs JSON lines, but not everything it writes comes from its logging: a traceback
printed before it set its logging up (an import that fails), a warning raised at startup,
a library that prints. The supervisor reads each child's stdout and stderr and writes them
to its own stderr: a line that is a JSON object as it is, anything else as a JSON log
record of its own (logger `evotrack.child`, the child's name in `child`), a traceback as
one record with the traceback in `exc`. So every line of the run is one JSON object.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from typing import IO

log = logging.getLogger("evotrack.child")

TRACEBACK_START = "Traceback (most recent call last):"


def relay_output(child: str, stream: IO[bytes]) -> threading.Thread:
    """Relay `stream` in a thread until the child (and whatever it started) closes it."""
    thread = threading.Thread(
        target=_relay_lines, args=(child, stream), name=f"output of {child}", daemon=True
    )
    thread.start()
    return thread


def is_json_record(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _relay_lines(child: str, stream: IO[bytes]) -> None:
    traceback: list[str] = []
    with stream:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\r\n")
            if is_json_record(line):
                # Another process of the child (a uvicorn worker) may log mid-traceback.
                _write(line)
            elif traceback:
                traceback.append(line)
                if not line.startswith((" ", "\t")):  # the exception: the traceback's end
                    _log_traceback(child, traceback)
                    traceback = []
            elif line.startswith(TRACEBACK_START):
                traceback = [line]
            elif line.strip():
                log.warning("%s", line, extra={"child": child})
    if traceback:
        _log_traceback(child, traceback)


def _write(line: str) -> None:
    # Reading on matters more than this line: a relay that stopped reading (its stderr
    # closed, `evotrack run | head`) would leave the child blocked on a full pipe.
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _log_traceback(child: str, lines: list[str]) -> None:
    log.error("%s", lines[-1], extra={"child": child, "exc": "\n".join(lines)})
