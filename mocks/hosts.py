"""Host names from outside the mock: the Host header its URLs are built on, and callback targets.

A client's ``Host`` header becomes the base of every URL the mock hands out (``polling_url``,
result URLs, webhook bodies). :func:`request_host` keeps it only when it is ``host[:port]`` as
RFC 9110 section 7.2 defines it (a registered name or an IP literal, RFC 3986 section 3.2.2), and
falls back to the address the server listens on otherwise, so ``Host: a"b<c>@evil/x?`` never
reaches a URL.

A callback URL is parsed once at submit by :func:`parse_target`; an :class:`Allowlist` then says
whether the mock may call it. By default only loopback is allowed (``localhost``, ``127.0.0.0/8``,
``::1``): a mock reachable by others must not become a way to reach the hosts around it.
``veomock serve --webhook-allow HOST[:PORT]|CIDR`` (repeatable) and ``POST /_veomock/webhooks
{"allow": [...]}`` add entries. A name matches a ``HOST`` entry by name, never by what it
resolves to: nothing is looked up or connected to before the check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LOOPBACK", "Allowlist", "Target", "is_loopback", "parse_target", "request_host"]

LOOPBACK = ("localhost", "127.0.0.0/8", "::1")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._~-]*[A-Za-z0-9])?\.?"
_HOST_HEADER = re.compile(rf"(?:{_NAME}|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?")
_TARGET_NAME = re.compile(r"[^\W_](?:[\w.-]*[^\W_])?", re.UNICODE)  # letters of any script: IDN names
_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=256)
def _host_header(value: str) -> bool:
    match = _HOST_HEADER.fullmatch(value)
    return match is not None and int(match["port"] or 0) <= 65535


def request_host(header: str | None, server: Sequence[Any] | None) -> str:
    """``host[:port]`` for the URLs a request gets back: its Host header when that is one, else the
    server's own address (``127.0.0.1:80`` when the server's address is unknown too)."""
    if header and _host_header(header):
        return header
    host, port = server or ("127.0.0.1", 80)
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _address(host: str) -> Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    address = _address(host)
    return host.lower().rstrip(".") == "localhost" if address is None else address.is_loopback


@dataclass(frozen=True)
class Target:
    """Where a callback goes: scheme, host (lower case, no brackets, no trailing dot) and port."""

    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        """``host:port`` as an allow-list entry writes it (an IPv6 host in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(url: str) -> Target:
    """The target of an absolute http(s) URL; :class:`ValueError` saying what is wrong otherwise."""
    bad = _UNSAFE.search(url)
    if bad:
        raise ValueError(f"it holds {bad.group()!a} at position {bad.start()}; percent-encode it")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", a port that is no number or out of range
        raise ValueError(f"it does not parse as a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError("it needs http:// or https:// and a host")
    host = parts.hostname.rstrip(".")
    if _address(host) is None and not _TARGET_NAME.fullmatch(host):
        raise ValueError(f"its host {host!r} is neither a host name nor an IP address")
    if port == 0:
        raise ValueError("port 0 cannot be called")
    return Target(scheme, host, port or _DEFAULT_PORTS[scheme])


@dataclass(frozen=True)
class _Entry:
    text: str
    network: Network | None = None
    host: str | None = None
    port: int | None = None

    def allows(self, target: Target, address: Address | None) -> bool:
        if self.network is not None:
            return address is not None and address in self.network
        if self.port is not None and self.port != target.port:
            return False
        if address is not None and self.host is not None and (mine := _address(self.host)) is not None:
            return mine == address
        return self.host == target.host


def _entry(text: str) -> _Entry:
    example = "use HOST, HOST:PORT or a CIDR, such as receiver, receiver:8080, 10.0.0.0/8 or [::1]:9000"
    item = text.strip()
    try:
        return _Entry(item, network=ipaddress.ip_network(item, strict=False))
    except ValueError:
        pass
    host, port = item, None
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"webhook target {text!r} is not HOST[:PORT] or a CIDR; {example}")
        port = rest[1:] or None
    elif item.count(":") == 1:
        host, port = item.split(":")
    try:
        number = None if port is None else int(port)
    except ValueError:
        number = -1
    host = host.lower().rstrip(".")
    if (
        not host
        or (number is not None and not 0 < number < 65536)
        or (_address(host) is None and not _TARGET_NAME.fullmatch(host))
    ):
        raise ValueError(f"webhook target {text!r} is not HOST[:PORT] or a CIDR; {example}")
    return _Entry(item, host=host, port=number)


class Allowlist:
    """The callback targets the mock may call: ``defaults`` (loopback) plus what was added."""

    def __init__(self, entries: Iterable[str] = (), defaults: Iterable[str] = LOOPBACK) -> None:
        self._entries: list[_Entry] = []
        self.add([*defaults, *entries])

    def add(self, entries: Iterable[str]) -> None:
        """Allow more targets; one malformed entry raises :class:`ValueError` and adds none."""
        parsed = [_entry(str(text)) for text in entries]
        known = {e.text for e in self._entries}
        for entry in parsed:
            if entry.text not in known:
                self._entries.append(entry)
                known.add(entry.text)

    def allows(self, target: Target) -> bool:
        address = _address(target.host)
        return any(entry.allows(target, address) for entry in self._entries)

    def entries(self) -> list[str]:
        return [e.text for e in self._entries]
