"""Where the server may send requests of its own (webhook deliveries): the rules of API.md
against server-side request forgery.

A URL is `https://`, or `http://` to a loopback address when ENVIRONMENT is development or
test. In production, a host that resolves to a private, loopback, link-local, reserved or
otherwise non-public address is refused unless WEBHOOK_ALLOWED_HOSTS lists it. The check
runs when a URL is saved and again before every delivery (a name may resolve elsewhere
later); redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from shared.config import Settings

MAX_URL_LENGTH = 2048
Resolver = Callable[[str], Sequence[str]]  # host -> its addresses


class UnsafeURLError(ValueError):
    """A URL the server will not send to; the message says why, for the caller."""


def resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURLError(f"the host '{host}' does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return ip.is_global and not ip.is_multicast


def _loopback(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback


def check_url(url: str, settings: Settings, resolver: Resolver = resolve) -> str:
    """The URL if the server may send to it; else UnsafeURLError saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"must be at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeURLError("must be an absolute https:// URL")
    if parts.username or parts.password:
        raise UnsafeURLError("must not carry a user name or password")
    relaxed = settings.environment in ("development", "test")
    addresses = resolver(host)
    if parts.scheme == "http" and not (relaxed and all(map(_loopback, addresses))):
        raise UnsafeURLError("must be https:// (http:// only to this machine, outside production)")
    if relaxed or host.lower() in {h.lower() for h in settings.webhook_allowed_hosts}:
        return url
    if not all(map(_public, addresses)):
        raise UnsafeURLError(
            f"'{host}' resolves to a private, loopback or link-local address; "
            "list it in WEBHOOK_ALLOWED_HOSTS to allow it"
        )
    return url
