"""Where webhooks may go: public addresses only, unless an admin allowlisted the host or network.

A URL is checked when a subscription is saved and again at every delivery, after DNS
resolution; the delivery then connects to the very address that was checked (the Host header
and TLS SNI still name the host), so a name that re-resolves to an internal address between the
check and the connection (DNS rebinding) gets nowhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class UrlRefused(Exception):
    """The URL may not be called; the message says why (shown to the subscriber)."""


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address the host resolves to (the system resolver, off the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"the host {host} does not resolve ({exc})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_entry(raw: str) -> str:
    """An allowlist entry in its canonical spelling: an IP network (a bare address is a /32 or
    /128), a host name, or `*.suffix` for every name under a domain. Raises ValueError."""
    value = raw.strip().lower().rstrip(".")
    if not value:
        raise ValueError("empty entry")
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        pass
    name = value.removeprefix("*.")
    labels = name.split(".")
    if (
        len(name) > 253
        or any(not label or len(label) > 63 for label in labels)
        or not all(c.isalnum() or c == "-" for label in labels for c in label)
        or any(label.startswith("-") or label.endswith("-") for label in labels)
    ):
        raise ValueError(f"{raw!r} is neither an IP address, a network nor a host name")
    return value


@dataclass(frozen=True)
class Allowlist:
    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowlist:
        hosts, suffixes, networks = set(), [], []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffixes.append(entry[1:])  # ".corp.example"
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(s) for s in self.suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def _public(address: IPAddress) -> bool:
    """Globally routable; refuses loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7),
    link-local (169.254/16 with the cloud metadata address, fe80::/10), shared (100.64/10),
    multicast, reserved and unspecified addresses, also when wrapped in IPv6."""
    if isinstance(address, ipaddress.IPv6Address):
        wrapped = address.ipv4_mapped or address.sixtofour
        if wrapped is not None and not _public(wrapped):
            return False
        if address.teredo is not None:
            return False
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to `address`, name `host` in the Host header and SNI."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    path: str  # path and query, at least "/"

    @property
    def connect_url(self) -> str:
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{netloc}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-and-query) of an http(s) URL without credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("the URL must be http or https")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the URL may not carry credentials; receivers verify the signature")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


async def check_url(
    url: str,
    allowlist: Allowlist,
    *,
    require_https: bool,
    resolver: Resolver | None = None,
) -> Target:
    """Resolves the URL's host and refuses internal addresses not on the allowlist (and plain
    http when https is required, unless allowlisted). Returns the address to connect to."""
    scheme, host, port, path = split_url(url)
    resolve = resolver or resolve_host
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolve(host, port)]
    if not addresses:
        raise UrlRefused(f"the host {host} does not resolve")
    host_allowed = allowlist.allows_host(host)
    if not host_allowed:
        for address in addresses:
            if not _public(address) and not allowlist.allows_address(address):
                raise UrlRefused(
                    f"the host {host} resolves to {address}, an internal address "
                    "(loopback, private, link-local or metadata); an admin must allowlist it"
                )
    allowlisted = host_allowed or all(allowlist.allows_address(a) for a in addresses)
    if require_https and scheme != "https" and not allowlisted:
        raise UrlRefused("the URL must use https (only allowlisted internal hosts may use http)")
    return Target(url, scheme, host, port, str(addresses[0]), path)
