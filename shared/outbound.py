"""Where the server may send requests of its own (webhook deliveries): the rules of API.md
against server-side request forgery.

A URL is `https://`, or `http://` to a loopback address when ENVIRONMENT is development or
test. In production, a host that resolves to a private, loopback, link-local, reserved or
otherwise non-public address is refused unless WEBHOOK_ALLOWED_HOSTS lists it. The check
runs when a URL is saved and again before every delivery (a name may resolve elsewhere
later), and a delivery connects to the address it checked (`pinned`), never to a second
lookup of the name; redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
    checked_addresses(url, settings, resolver)
    return url


def checked_addresses(url: str, settings: Settings, resolver: Resolver = resolve) -> list[str]:
    """The addresses the URL's host resolves to, if the server may send there; else
    UnsafeURLError saying why. Connect to one of these (`pinned`), not to the name again:
    a name that resolves anew may point elsewhere by then (DNS rebinding)."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"must be at most {MAX_URL_LENGTH} characters")
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeURLError("must be an absolute https:// URL")
    if parts.username or parts.password:
        raise UnsafeURLError("must not carry a user name or password")
    relaxed = settings.environment in ("development", "test")
    addresses = list(resolver(host))
    if parts.scheme == "http" and not (relaxed and all(map(_loopback, addresses))):
        raise UnsafeURLError("must be https:// (http:// only to this machine, outside production)")
    if relaxed or host.lower() in {h.lower() for h in settings.webhook_allowed_hosts}:
        return addresses
    if not all(map(_public, addresses)):
        raise UnsafeURLError(
            f"'{host}' resolves to a private, loopback or link-local address; "
            "list it in WEBHOOK_ALLOWED_HOSTS to allow it"
        )
    return addresses


@dataclass(frozen=True)
class Pinned:
    """A request to a checked address: the URL names the address, the Host header and
    the TLS server name (which the certificate is checked against) keep the host's name."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any]


def pinned(url: str, addresses: Sequence[str]) -> Pinned:
    """`url` sent to the first of its checked `addresses`. A host that is an address
    already is left as it is."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return Pinned(url, {}, {})
    except ValueError:
        pass
    address = addresses[0].split("%", 1)[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    return Pinned(
        urlunsplit(parts._replace(netloc=netloc)),
        {"Host": parts.netloc.rpartition("@")[2]},
        {"sni_hostname": host} if parts.scheme == "https" else {},
    )
