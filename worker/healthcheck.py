"""The health check of a worker container (`python -m worker.healthcheck`, compose.yaml).

A worker serves no port, and a live process says little: a worker that lost Redis, or
whose RQ loop is stuck, is alive too. Healthy here means that an RQ worker of this host
(the container's hostname) is registered in Redis: registering takes a Redis that
answers, and the registration expires unless the worker's heartbeats keep renewing it
(RQ's worker TTL), so a worker that stopped working drops out by itself. Exit status 0
when healthy, 1 otherwise, with one line that says why (`docker inspect` shows it).
"""

from __future__ import annotations

import socket
import sys

import redis
from rq import Worker

from shared.config import get_settings

TIMEOUT_SECONDS = 3.0


def registered_workers(connection: redis.Redis, hostname: str) -> list[str]:
    """The names and states of the RQ workers registered from `hostname`."""
    return [
        f"{worker.name} ({worker.get_state()}, queues {', '.join(worker.queue_names())})"
        for worker in Worker.all(connection=connection)
        if worker.hostname == hostname
    ]


def check(redis_url: str, hostname: str) -> tuple[bool, str]:
    """Whether a worker of `hostname` is registered, and the line that says so."""
    if not redis_url:
        return False, "REDIS_URL is not set"
    connection = redis.Redis.from_url(
        redis_url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
    try:
        mine = registered_workers(connection, hostname)
    except (redis.RedisError, OSError) as exc:
        return False, f"Redis does not answer: {exc}"
    finally:
        connection.close()
    if not mine:
        return False, f"no RQ worker of {hostname} is registered in Redis"
    return True, "registered: " + "; ".join(mine)


def main() -> int:
    healthy, reason = check(get_settings().redis_url, socket.gethostname())
    sys.stdout.write(("healthy, " if healthy else "unhealthy, ") + reason + "\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
