"""Who is calling, cheaply, for the middlewares (rate limits, the access log): the subject of a
valid bearer token, or the client's IP address.

Decoding a token costs tens of microseconds; clients reuse a token for many requests, so the
subject is remembered per token (bounded, and only until the token expires). This is a hint for
logs and rate limits only: authorization still goes through app.auth.deps."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict

from app.core.config import Settings
from app.core.tokens import InvalidToken, decode_access_token

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TokenSubjects:
    def __init__(self, settings: Settings, capacity: int = 4096) -> None:
        self.settings = settings
        self.capacity = capacity
        self._seen: OrderedDict[str, tuple[str | None, float]] = OrderedDict()

    def subject(self, authorization: bytes | None) -> str | None:
        """The `sub` of a valid, unexpired bearer token in the Authorization header, else None."""
        if not authorization or authorization[:7].lower() != b"bearer ":
            return None
        token = authorization[7:].strip().decode("latin-1")
        now = time.time()
        hit = self._seen.get(token)
        if hit is not None:
            subject, expires = hit
            if now < expires:
                return subject
        try:
            claims = decode_access_token(self.settings, token)
            subject, expires = claims.sub, claims.exp.timestamp()
        except InvalidToken:
            subject, expires = None, now + 60  # a bad token stays bad; look again in a minute
        self._seen[token] = (subject, expires)
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return subject


def parse_networks(values: list[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(scope, trusted: tuple[IPNetwork, ...]) -> str:
    """The peer's address; behind a trusted proxy, the right-most X-Forwarded-For address that
    is not itself a trusted proxy (the left-most entries are whatever the client wrote)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted:
        return peer
    address = _ip(peer)
    if address is None or not any(address in net for net in trusted):
        return peer
    forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
    hops = [h for h in forwarded.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            return peer  # a malformed chain: trust nothing in it
        if not any(address in net for net in trusted):
            return str(address)
    return str(_ip(hops[0])) if hops else peer
