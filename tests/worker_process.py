"""A worker process of one role (`python -m worker.main --role …`) on the test database and
a test's own Redis, for the tests that stop, kill or starve workers; its output goes to a
log file that failures show."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import make_url

from tests.services import ROOT


class WorkerProcess:
    def __init__(
        self,
        database_url: str,
        redis_url: str,
        log_path: Path,
        *,
        role: str,
        app_name: str,
        env: dict[str, str] | None = None,
    ) -> None:
        # The application name lets a test find the worker's connections in pg_stat_activity.
        url = make_url(database_url).update_query_dict({"application_name": app_name})
        self.env = {
            **os.environ,
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "false",
            **(env or {}),
        }
        self.role = role
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker.main", "--role", self.role],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def assert_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        assert code is None, f"the worker exited with {code}:\n{self.log()}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(20)
