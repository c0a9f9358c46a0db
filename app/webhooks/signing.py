"""Webhook signatures: HMAC-SHA256 over "<unix time>.<body>" with the subscription's secret.

    X-RegionDesk-Signature: t=1764355200,v1=5257a869e7ec…(64 hex digits)

While a rotated secret is still in its grace period, a second v1= is signed with the old one,
so receivers can switch secrets without losing events.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

SIGNATURE_HEADER = "X-RegionDesk-Signature"
EVENT_ID_HEADER = "X-RegionDesk-Event-Id"
EVENT_TYPE_HEADER = "X-RegionDesk-Event-Type"
DELIVERY_ID_HEADER = "X-RegionDesk-Delivery-Id"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])


def verify(
    secret: str,
    header: str,
    body: bytes,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: the timestamp is recent and one v1 matches (in constant time)."""
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, c) for c in candidates)
