"""Every piece of JWT code in the service lives here (python-jose, HS256 only)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import JWTError, jwt

from app.core.config import Settings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")
LEEWAY_SECONDS = 30  # clock skew tolerated between our own instances


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AccessClaims:
    sub: str
    role: str
    scopes: tuple[str, ...]
    jti: str
    iat: int
    exp: datetime


def issue_access_token(
    settings: Settings,
    *,
    subject: str,
    role: str,
    scopes: list[str],
    lifetime: timedelta,
    now: datetime | None = None,
) -> str:
    now = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        "role": role,
        "scope": " ".join(scopes),
        "typ": "access",
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        # An explicit algorithm list: a token that names another algorithm (none included)
        # is refused before its signature is looked at.
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_iss": True,
                "require_aud": True,
                "require_sub": True,
                "require_jti": True,
                "leeway": LEEWAY_SECONDS,
            },
        )
    except JWTError as exc:
        raise InvalidToken(str(exc)) from exc
    missing = [c for c in REQUIRED_CLAIMS if c not in claims]
    if missing:
        raise InvalidToken(f"missing claims: {', '.join(missing)}")
    if claims.get("typ") != "access" or not isinstance(claims.get("role"), str):
        raise InvalidToken("not an access token")
    iat = claims["iat"]
    if not isinstance(iat, int | float) or iat > datetime.now(UTC).timestamp() + LEEWAY_SECONDS:
        raise InvalidToken("token issued in the future")
    return AccessClaims(
        sub=str(claims["sub"]),
        role=claims["role"],
        scopes=tuple(str(claims.get("scope", "")).split()),
        jti=str(claims["jti"]),
        iat=int(iat),
        exp=datetime.fromtimestamp(claims["exp"], UTC),
    )


class VerifiedTokens:
    """Access tokens this process has already verified, with their claims: a client sends the
    same token with every request, and checking its signature and claims again gives the same
    answer until it expires (a token valid once stays valid: `nbf` and `iat` only recede). So an
    entry counts until `exp` (plus the leeway decode_access_token allows) and no longer; only
    valid tokens are kept; bounded, the oldest out first. Whether the account behind a token is
    still active is not a property of the token: app.auth checks that on every request."""

    def __init__(
        self, settings: Settings, size: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.size = size
        self.clock = clock
        self._claims: dict[str, AccessClaims] = {}

    def claims(self, token: str) -> AccessClaims:
        """decode_access_token's answer for this token (raises InvalidToken the same way)."""
        claims = self._claims.get(token)
        if claims is not None:
            if self.clock() < claims.exp.timestamp() + LEEWAY_SECONDS:
                return claims
            del self._claims[token]
            raise InvalidToken("Signature has expired.")
        claims = decode_access_token(self.settings, token)
        if len(self._claims) >= self.size:
            now = self.clock()
            for key in [k for k, c in self._claims.items() if c.exp.timestamp() <= now]:
                del self._claims[key]
            while len(self._claims) >= self.size:
                del self._claims[next(iter(self._claims))]
        self._claims[token] = claims
        return claims
