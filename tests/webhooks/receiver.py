"""A real HTTP receiver for webhook deliveries, started by a test: it records what it gets
and answers as the test tells it (a status, a redirect, a wait for an event)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    @property
    def event_id(self) -> str:
        return self.headers["evotrack-event-id"]


@dataclass
class Receiver:
    """`answer(received) -> (status, headers)`; by default 204 at once."""

    url: str
    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], tuple[int, dict[str, str]]] = lambda _: (204, {})
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """The first `count` requests, once they have arrived."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} deliveries arrived")
            return list(self.received[:count])


@contextmanager
def receiver(
    answer: Callable[[Received], tuple[int, dict[str, str]]] | None = None,
    *,
    port: int = 0,
) -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1 (or on `port`: one that comes back where
    an earlier one was), for the duration of the block."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", 0))
            got = Received(
                self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
            )
            rec = state["receiver"]
            status, headers = rec.answer(got)
            with rec.arrived:
                rec.received.append(got)
                rec.arrived.notify_all()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    rec = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    if answer is not None:
        rec.answer = answer
    state["receiver"] = rec
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
