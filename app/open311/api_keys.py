"""Open311's `api_key`: a machine client's credential, `<client_id>:<client_secret>` — the same
pair the client uses for the token endpoint's client_credentials grant.

Argon2 is slow on purpose, so a verified key is remembered in this process for a short time,
keyed by the SHA-256 of the key (the key itself is never kept). The client's row is still read
on every request, and the entry counts only while the client's secret hash is the one that was
verified: a disabled client or a rotated secret is refused at once, on every worker. Failed
attempts count towards the same per-client lockout as the token endpoint."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.security import APIKeyQuery
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import ApiClient
from app.auth.deps import Principal, principal_of
from app.auth.service import LoginThrottler
from app.core.config import Settings
from app.core.passwords import verify_secret
from app.open311.errors import InvalidApiKey

CACHE_SECONDS = 60.0
CACHE_SIZE = 10_000

api_key_query = APIKeyQuery(
    name="api_key",
    scheme_name="Open311 api_key",
    description="`<client_id>:<client_secret>` of a machine client (Open311 routes only)",
    auto_error=False,
)


@dataclass(frozen=True, slots=True)
class _Verified:
    client_pk: int
    secret_hash: str
    until: float


class VerifiedKeys:
    """Recently verified keys of this process: SHA-256 of the key -> the client and the secret
    hash it was verified against. Bounded; expired entries go first, then the oldest."""

    def __init__(self, seconds: float = CACHE_SECONDS, size: int = CACHE_SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: dict[str, _Verified] = {}

    def matches(self, digest: str, client: ApiClient) -> bool:
        entry = self._entries.get(digest)
        if entry is None:
            return False
        if entry.until <= time.monotonic():
            del self._entries[digest]
            return False
        return entry.client_pk == client.id and entry.secret_hash == client.secret_hash

    def remember(self, digest: str, client: ApiClient) -> None:
        now = time.monotonic()
        if len(self._entries) >= self.size:
            for key in [k for k, e in self._entries.items() if e.until <= now]:
                del self._entries[key]
            while len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]
        self._entries[digest] = _Verified(client.id, client.secret_hash, now + self.seconds)


def verified_keys(request: Request) -> VerifiedKeys:
    state = request.app.state
    if getattr(state, "open311_verified_keys", None) is None:
        state.open311_verified_keys = VerifiedKeys()
    return state.open311_verified_keys


async def client_principal(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    api_key: str | None,
    scope: str,
) -> Principal:
    """The machine client an api_key belongs to, as a Principal (as a bearer token of that
    client would give), holding `scope`; else the spec's 403."""
    if not api_key:
        raise InvalidApiKey("Missing api_key: send api_key=<client_id>:<client_secret>")
    client_id, _, secret = api_key.partition(":")
    if not client_id or not secret:
        raise InvalidApiKey("Invalid api_key: the form is <client_id>:<client_secret>")
    client = (await session.exec(select(ApiClient).where(ApiClient.client_id == client_id))).first()
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    cache = verified_keys(request)
    if client is None or not cache.matches(digest, client):
        throttle_key = f"client:{client_id}"
        throttler = LoginThrottler(request.app.state.sessionmaker, settings)
        await throttler.check(throttle_key)
        # Argon2 runs for unknown clients too (a dummy hash): timing does not tell them apart.
        if not verify_secret(client.secret_hash if client else None, secret) or client is None:
            await throttler.failed(throttle_key)
            raise InvalidApiKey("Invalid api_key")
        await throttler.succeeded(throttle_key, session)
        cache.remember(digest, client)
    if not client.is_active:
        raise InvalidApiKey("Invalid api_key: the client is disabled")
    principal = principal_of(client)
    if scope not in principal.scopes:
        raise InvalidApiKey(
            f"This api_key's client (role '{principal.role}') may not do this: "
            f"it needs the scope {scope}"
        )
    return principal
