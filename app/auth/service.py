"""Issuing tokens: the password, client-credentials and refresh-token grants."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import ApiClient, User
from app.auth.deps import Principal, load_subject, subject_of
from app.auth.models import LoginThrottle, RefreshToken
from app.auth.permissions import ROLE_SCOPES, Role
from app.auth.schemas import Me, TokenResponse
from app.core.config import Settings
from app.core.errors import DomainError, TooManyRequests
from app.core.passwords import hash_secret, needs_rehash, verify_secret
from app.core.tokens import issue_access_token
from app.core.types import utcnow
from app.core.upsert import insert_for


class InvalidGrant(DomainError):
    """RFC 6749 error code carried as an extension member of the problem."""

    status, code = 401, "invalid-grant"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, error="invalid_grant")


class InvalidScope(DomainError):
    status, code = 400, "invalid-scope"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, error="invalid_scope")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _granted_scopes(role: Role, requested: str | None) -> frozenset[str]:
    allowed = ROLE_SCOPES[role]
    if not requested:
        return allowed
    asked = frozenset(requested.split())
    unknown = sorted(asked - allowed)
    if unknown:
        raise InvalidScope(f"The role '{role}' cannot be granted: {', '.join(unknown)}")
    return asked


class LoginThrottler:
    """Counts consecutive failures per account name in its own transaction, so the count
    survives the failed request's rollback and holds across workers."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings):
        self.sessionmaker = sessionmaker
        self.settings = settings

    async def check(self, key: str) -> None:
        async with self.sessionmaker() as session:
            row = await session.get(LoginThrottle, key)
        if row and row.locked_until and row.locked_until > utcnow():
            wait = int((row.locked_until - utcnow()).total_seconds()) + 1
            raise TooManyRequests(
                f"Too many failed attempts for this account; try again in {wait} seconds", wait
            )

    async def failed(self, key: str) -> None:
        now = utcnow()
        async with self.sessionmaker() as session:
            table = LoginThrottle.__table__
            stmt = insert_for(session, table).values(username=key, failures=1, last_failure_at=now)
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.username],
                set_={"failures": table.c.failures + 1, "last_failure_at": now},
            )
            await session.exec(stmt)
            row = await session.get(LoginThrottle, key, populate_existing=True)
            if row is not None and row.failures >= self.settings.login_max_failures:
                row.locked_until = now + timedelta(seconds=self.settings.login_lockout_seconds)
                row.failures = 0
                session.add(row)
            await session.commit()

    async def succeeded(self, key: str, session: AsyncSession) -> None:
        row = await session.get(LoginThrottle, key)
        if row is not None:
            await session.delete(row)


class TokenService:
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        throttler: LoginThrottler,
    ) -> None:
        self.session = session
        self.settings = settings
        self.throttler = throttler

    async def password_grant(self, username: str, password: str, scope: str | None):
        key = f"user:{username.lower()}"
        await self.throttler.check(key)
        user = (await self.session.exec(select(User).where(User.username == username))).first()
        # verify_secret runs the same Argon2 work for an unknown user (dummy hash).
        ok = verify_secret(user.password_hash if user else None, password)
        if not ok or user is None or not user.is_active:
            await self.throttler.failed(key)
            raise InvalidGrant("Wrong username or password, or the account is disabled")
        await self.throttler.succeeded(key, self.session)
        if needs_rehash(user.password_hash):
            user.password_hash = hash_secret(password)
            self.session.add(user)
        granted = _granted_scopes(Role(user.role), scope)
        return await self._tokens(user, granted, self.settings.access_token_minutes, True)

    async def client_credentials_grant(self, client_id: str, secret: str, scope: str | None):
        key = f"client:{client_id}"
        await self.throttler.check(key)
        client = (
            await self.session.exec(select(ApiClient).where(ApiClient.client_id == client_id))
        ).first()
        ok = verify_secret(client.secret_hash if client else None, secret)
        if not ok or client is None or not client.is_active:
            await self.throttler.failed(key)
            raise InvalidGrant("Unknown client or wrong secret, or the client is disabled")
        await self.throttler.succeeded(key, self.session)
        granted = _granted_scopes(Role(client.role), scope)
        # Machines re-authenticate with their secret; no refresh token (RFC 6749 §4.4.3).
        return await self._tokens(client, granted, self.settings.client_token_minutes, False)

    async def refresh_grant(self, refresh_token: str, scope: str | None, sessionmaker):
        row = (
            await self.session.exec(
                select(RefreshToken).where(RefreshToken.token_hash == _token_hash(refresh_token))
            )
        ).first()
        if row is None:
            raise InvalidGrant("Unknown refresh token")
        if row.used_at is not None or row.revoked_at is not None:
            # A spent token presented again means it leaked: end the whole family, and keep
            # that revocation even though this request fails.
            async with sessionmaker() as s:
                await revoke_family(s, row.family_id)
                await s.commit()
            raise InvalidGrant("This refresh token was already used; its session is revoked")
        if row.expires_at <= utcnow():
            raise InvalidGrant("The refresh token has expired")
        account = await load_subject(self.session, row.subject)
        if account is None or not account.is_active:
            raise InvalidGrant("The account is disabled")
        row.used_at = utcnow()
        self.session.add(row)
        # Never wider than the original grant, and never wider than the role grants today.
        original = frozenset(row.scope.split())
        granted = _granted_scopes(Role(account.role), scope) & original
        if scope and not frozenset(scope.split()) <= original:
            raise InvalidScope("A refresh cannot add scopes the original grant did not have")
        return await self._tokens(
            account, granted, self.settings.access_token_minutes, True, family=row.family_id
        )

    async def _tokens(
        self,
        account: User | ApiClient,
        granted: frozenset[str],
        minutes: int,
        with_refresh: bool,
        family: str | None = None,
    ) -> TokenResponse:
        lifetime = timedelta(minutes=minutes)
        scopes = sorted(granted)
        access = issue_access_token(
            self.settings,
            subject=subject_of(account),
            role=account.role,
            scopes=scopes,
            lifetime=lifetime,
        )
        refresh = None
        if with_refresh:
            refresh = secrets.token_urlsafe(32)
            self.session.add(
                RefreshToken(
                    token_hash=_token_hash(refresh),
                    family_id=family or secrets.token_hex(16),
                    subject=subject_of(account),
                    scope=" ".join(scopes),
                    expires_at=utcnow() + timedelta(days=self.settings.refresh_token_days),
                )
            )
            await self.session.flush()
        return TokenResponse(
            access_token=access,
            expires_in=int(lifetime.total_seconds()),
            refresh_token=refresh,
            scope=" ".join(scopes),
        )


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.exec(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_subject_tokens(session: AsyncSession, subject: str) -> None:
    """Ends every refresh session of an account (on disable or password reset)."""
    await session.exec(
        update(RefreshToken)
        .where(RefreshToken.subject == subject, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_token(session: AsyncSession, principal: Principal, token: str) -> None:
    """RFC 7009: revoke a refresh token of the caller's own; unknown tokens are ignored."""
    row = (
        await session.exec(
            select(RefreshToken).where(RefreshToken.token_hash == _token_hash(token))
        )
    ).first()
    if row is not None and row.subject == principal.subject:
        await revoke_family(session, row.family_id)


def me(principal: Principal) -> Me:
    return Me(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        scopes=sorted(principal.scopes),
        agency_id=principal.agency_id,
        source_system=principal.source_system,
    )
