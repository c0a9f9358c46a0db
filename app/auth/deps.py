"""Who is calling: the bearer token turned into a Principal, checked against the route's scopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2, SecurityScopes
from sqlmodel import select

from app.accounts.models import ApiClient, User
from app.auth.account_cache import Account, AccountCache
from app.auth.permissions import ROLE_SCOPES, SCOPES, Role
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import Forbidden, Unauthorized
from app.core.tokens import InvalidToken, VerifiedTokens

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

TOKEN_URL = "/api/v1/auth/token"


class BearerToken(OAuth2):
    """OAuth2 bearer tokens, offered in OpenAPI with both the password and the
    client-credentials flows so Swagger UI's Authorize button works for people and machines.

    Called as a dependency, it is the whole of authentication: the caller (a Principal) with
    the scopes the route asks for (`requires`). One dependency rather than the scheme, the
    settings and the check each as its own: FastAPI spends several microseconds on every
    dependency of every request."""

    def __init__(self) -> None:
        super().__init__(
            flows=OAuthFlows(
                password=OAuthFlowPassword(tokenUrl=TOKEN_URL, scopes=SCOPES),
                clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL, scopes=SCOPES),
            ),
            scheme_name="OAuth2",
            auto_error=False,
        )

    async def __call__(  # type: ignore[override]
        self, request: Request, security_scopes: SecurityScopes, session: SessionDep
    ) -> Principal:
        return await authenticate(request, security_scopes, session, bearer_credentials(request))


def bearer_credentials(request: Request) -> str | None:
    """The token of the request's `Authorization: Bearer <token>` header, None without one."""
    header = request.headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <token>'")
    return token.strip()


bearer_token = BearerToken()


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["user", "client"]
    id: int
    name: str
    role: Role
    scopes: frozenset[str]
    agency_id: int | None = None
    source_system: str | None = None

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.id}"


def subject_of(obj: User | ApiClient) -> str:
    return f"{'user' if isinstance(obj, User) else 'client'}:{obj.id}"


async def load_subject(session, subject: str) -> User | ApiClient | None:
    kind, _, raw_id = subject.partition(":")
    if not raw_id.isdigit():
        return None
    model = {"user": User, "client": ApiClient}.get(kind)
    if model is None:
        return None
    return (await session.exec(select(model).where(model.id == int(raw_id)))).first()


def verified_tokens(request: Request, settings: Settings) -> VerifiedTokens:
    state = request.app.state
    tokens = getattr(state, "verified_tokens", None)
    if tokens is None or tokens.settings is not settings:
        tokens = state.verified_tokens = VerifiedTokens(settings)
    return tokens


def account_cache(request: Request) -> AccountCache:
    state = request.app.state
    cache = getattr(state, "account_cache", None)
    if cache is None:
        cache = state.account_cache = AccountCache()
    return cache


def _principal_of_account(account: Account, granted: frozenset[str]) -> Principal:
    role = Role(account.role)
    scopes = ROLE_SCOPES[role] & granted
    if account.kind == "user":
        return Principal("user", account.id, account.name, role, scopes, account.agency_id)
    return Principal(
        "client", account.id, account.name, role, scopes, account.agency_id, account.source_system
    )


def principal_of(obj: User | ApiClient, granted: frozenset[str] | None = None) -> Principal:
    role = Role(obj.role)
    scopes = ROLE_SCOPES[role] if granted is None else ROLE_SCOPES[role] & granted
    if isinstance(obj, User):
        return Principal("user", obj.id, obj.username, role, scopes, obj.agency_id)
    return Principal(
        "client", obj.id, obj.client_id, role, scopes, obj.agency_id, obj.source_system
    )


async def authenticate(
    request: Request, security_scopes: SecurityScopes, session: AsyncSession, token: str | None
) -> Principal:
    if token is None:
        raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>'")
    try:
        claims = verified_tokens(request, request.app.state.settings).claims(token)
    except InvalidToken as exc:
        raise Unauthorized(f"Invalid access token: {exc}") from None
    # The account row, or this process's copy of it from the last few seconds (account_cache).
    cache = account_cache(request)
    account = cache.get(claims.sub)
    if account is None:
        row = await load_subject(session, claims.sub)
        if row is not None:
            account = Account.of(row)
            cache.remember(claims.sub, account)
    if account is None or not account.is_active:
        raise Unauthorized("The account behind this token does not exist or is disabled")
    if claims.iat < account.credentials_changed:
        raise Unauthorized("The token was issued before the account's credentials changed")
    # Effective rights: what the token was granted, limited by what the role grants today.
    principal = _principal_of_account(account, frozenset(claims.scopes))
    missing = [s for s in security_scopes.scopes if s not in principal.scopes]
    if missing:
        raise Forbidden(
            f"This operation needs the scope {', '.join(missing)}, "
            f"which the role '{principal.role}' does not have",
            required_scopes=missing,
        )
    return principal


def requires(*scopes: str):
    """A typed dependency for a route: the caller, who must hold every scope named."""
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope}")
    return Annotated[Principal, Security(bearer_token, scopes=list(scopes))]


Authenticated = requires()
