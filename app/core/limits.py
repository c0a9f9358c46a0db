"""Resource limits as pure ASGI middlewares: the request body size (413) and per-client rates on
intake and the token endpoint (429).

Rates are counted in process memory: each worker process keeps its own buckets, so with N
workers a client can get up to N times the configured rate (docs/operations.md)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.callers import IPNetwork, TokenSubjects, client_ip, parse_networks
from app.core.config import Settings
from app.core.errors import PayloadTooLarge, ProblemResponse, TooManyRequests, problem

# --- body size ----------------------------------------------------------------------------


class RequestBodyTooLarge(StarletteHTTPException):
    """Raised from receive() when a streamed body passes the limit. An HTTPException, so
    FastAPI's body parsing lets it through to the handler below instead of answering 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_detail(limit))
        self.limit = limit


def too_large_detail(limit: int) -> str:
    return f"The request body is larger than this endpoint's limit of {limit} bytes"


def too_large(limit: int, path: str) -> ProblemResponse:
    return problem(
        413,
        too_large_detail(limit),
        code=PayloadTooLarge.code,
        instance=path,
        limit_bytes=limit,
    )


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length, and whether the request has a body at all: a request with
    neither Content-Length nor Transfer-Encoding has none (RFC 9112 §6.3)."""
    length = None
    chunked = False
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None  # the server refuses a malformed length before we get it
            return length, True
        if key == b"transfer-encoding":
            chunked = True
    return length, chunked


class BodyLimitMiddleware:
    """Refuses a body over the limit: at once when Content-Length says so, and while streaming
    when there is no Content-Length (chunked). Paths ending in /batch get the batch limit."""

    def __init__(self, app: ASGIApp, *, default_limit: int, batch_limit: int) -> None:
        self.app = app
        self.default_limit = default_limit
        self.batch_limit = batch_limit

    def limit_for(self, path: str) -> int:
        return self.batch_limit if path.rstrip("/").endswith("/batch") else self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, has_body = _body_framing(scope)
        if not has_body:  # most requests (GET): nothing to count, nothing to wrap
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if length is not None:
            # The server holds the body to its declared length, so checking the header is enough.
            if length > limit:
                await too_large(limit, scope["path"])(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestBodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestBodyTooLarge as exc:
            # Reached when something other than FastAPI's body parsing read the body.
            if started:
                raise
            await too_large(exc.limit, scope["path"])(scope, receive, send)


# --- rates --------------------------------------------------------------------------------

INTAKE, AUTH = "intake", "auth"
RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
_LIMITED_POSTS = {
    "/api/v1/incidents": INTAKE,
    "/api/v1/appeals": INTAKE,
    "/api/v1/incidents/batch": INTAKE,
    "/api/v1/appeals/batch": INTAKE,
    "/api/v1/auth/token": AUTH,
}


def limited_group(method: str, path: str) -> str | None:
    """Which rate applies to a request, if any: intake (cases, Open311) or auth (tokens)."""
    if method != "POST":
        return None
    path = path.rstrip("/")
    group = _LIMITED_POSTS.get(path)
    if group is None and path.startswith("/open311/"):
        group = INTAKE
    return group


class TokenBuckets:
    """A token bucket per key: `per_minute` requests in a burst, refilled evenly over a minute."""

    PERIOD = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / self.PERIOD
        self.clock = clock
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, updated]
        self._pruned = clock()

    def take(self, key: str) -> tuple[bool, int, int, int]:
        """(allowed, remaining, seconds until full again, seconds until the next request)."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self.capacity, now]
        tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        bucket[0], bucket[1] = tokens, now
        reset = math.ceil((self.capacity - tokens) / self.rate)
        retry_after = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
        if now - self._pruned > self.PERIOD:
            self._prune(now)
        return allowed, int(tokens), reset, retry_after

    def _prune(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket: forget it (bounded memory).
        full = [
            key
            for key, (tokens, updated) in self._buckets.items()
            if tokens + (now - updated) * self.rate >= self.capacity
        ]
        for key in full:
            del self._buckets[key]
        self._pruned = now


class RateLimitMiddleware:
    """Per-client rates on intake and on the token endpoint. The client is the bearer token's
    subject when there is a valid one, else the client's IP address (through trusted proxies
    only). Limited routes carry RateLimit-Limit/-Remaining/-Reset; over the rate, 429."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        buckets: dict[str, TokenBuckets],
        subjects: TokenSubjects,
        trusted_proxies: tuple[IPNetwork, ...] = (),
    ) -> None:
        self.app = app
        self.buckets = buckets
        self.subjects = subjects
        self.trusted_proxies = trusted_proxies

    def client_key(self, scope: Scope) -> str:
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        subject = self.subjects.subject(authorization)
        return subject if subject else "ip:" + client_ip(scope, self.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        group = limited_group(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if group is None:
            await self.app(scope, receive, send)
            return
        buckets = self.buckets[group]
        allowed, remaining, reset, retry_after = buckets.take(self.client_key(scope))
        limit = int(buckets.capacity)
        headers = dict(zip(RATE_HEADERS, (str(limit), str(remaining), str(reset)), strict=True))
        if not allowed:
            response = problem(
                429,
                f"Too many requests from this client; retry in {retry_after} seconds",
                code=TooManyRequests.code,
                instance=scope["path"],
                headers={**headers, "Retry-After": str(retry_after)},
                retry_after=retry_after,
            )
            await response(scope, receive, send)
            return
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *raw]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_limits(app: FastAPI, settings: Settings, subjects: TokenSubjects) -> None:
    """Adds the rate and body limits (call before the CORS middleware is added, so CORS wraps
    their 413 and 429 answers)."""
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=settings.max_body_bytes,
        batch_limit=settings.max_batch_body_bytes,
    )

    async def _too_large(request: Request, exc: RequestBodyTooLarge) -> ProblemResponse:
        return too_large(exc.limit, request.url.path)

    app.add_exception_handler(RequestBodyTooLarge, _too_large)
    if settings.rate_limits_on:
        app.add_middleware(
            RateLimitMiddleware,
            buckets={
                INTAKE: TokenBuckets(settings.rate_limit_intake_per_minute),
                AUTH: TokenBuckets(settings.rate_limit_auth_per_minute),
            },
            subjects=subjects,
            trusted_proxies=parse_networks(settings.trusted_proxies),
        )
