"""Managing people and machine clients."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import ApiClient, User
from app.accounts.schemas import (
    ClientCreate,
    ClientUpdate,
    PasswordReset,
    UserCreate,
    UserUpdate,
    check_binding,
)
from app.auth.deps import Principal, subject_of
from app.auth.permissions import Role
from app.auth.service import revoke_subject_tokens
from app.core.errors import Conflict, Unprocessable
from app.core.pagination import paged
from app.core.passwords import hash_secret, new_secret
from app.core.references import ensure_unique, get_or_404, resolve
from app.core.schemas import PageParams
from app.core.types import utcnow
from app.reference.models import Agency
from app.reference.service import text_filter


async def list_users(session, page: PageParams, *, role, agency_id, is_active, q):
    stmt = select(User).order_by(User.username, User.id)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if agency_id is not None:
        stmt = stmt.where(User.agency_id == agency_id)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    stmt = text_filter(stmt, q, User.username, User.full_name)
    return await paged(session, stmt, page)


async def create_user(session: AsyncSession, data: UserCreate) -> User:
    await ensure_unique(session, User, "username", data.username)
    await resolve(session, Agency, data.agency_id, "agency_id")
    user = User(
        username=data.username,
        full_name=data.full_name,
        email=data.email,
        role=data.role,
        agency_id=data.agency_id,
        password_hash=hash_secret(data.password),
    )
    session.add(user)
    await session.flush()
    return user


async def update_user(
    session: AsyncSession, actor: Principal, user_id: int, data: UserUpdate
) -> User:
    user = await get_or_404(session, User, user_id)
    changes = data.model_dump(exclude_unset=True)
    role = Role(changes.get("role", user.role))
    agency_id = changes.get("agency_id", user.agency_id)
    if "role" in changes and role is not Role.agency and "agency_id" not in changes:
        agency_id = changes["agency_id"] = None  # leaving the agency role unbinds the agency
    try:
        check_binding(role, agency_id)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
    if "agency_id" in changes:
        await resolve(session, Agency, agency_id, "agency_id")
    if (
        actor.kind == "user"
        and actor.id == user_id
        and (changes.get("is_active") is False or changes.get("role", Role.admin) != Role.admin)
    ):
        raise Conflict("Administrators cannot disable or demote themselves")
    for key, value in changes.items():
        setattr(user, key, value)
    user.updated_at = utcnow()
    if changes.get("is_active") is False:
        await revoke_subject_tokens(session, subject_of(user))
    await session.flush()
    return user


async def reset_password(
    session: AsyncSession, user_id: int, data: PasswordReset
) -> tuple[User, str | None]:
    user = await get_or_404(session, User, user_id)
    generated = None if data.password else new_secret(12)
    user.password_hash = hash_secret(data.password or generated)
    user.password_changed_at = user.updated_at = utcnow()
    await revoke_subject_tokens(session, subject_of(user))
    await session.flush()
    return user, generated


async def list_clients(session, page: PageParams, *, role, is_active):
    stmt = select(ApiClient).order_by(ApiClient.client_id, ApiClient.id)
    if role is not None:
        stmt = stmt.where(ApiClient.role == role)
    if is_active is not None:
        stmt = stmt.where(ApiClient.is_active == is_active)
    return await paged(session, stmt, page)


async def create_client(session: AsyncSession, data: ClientCreate) -> tuple[ApiClient, str]:
    client_id = data.client_id or data.source_system or f"client-{secrets.token_hex(6)}"
    await ensure_unique(session, ApiClient, "client_id", client_id)
    if data.source_system:
        await ensure_unique(session, ApiClient, "source_system", data.source_system)
    await resolve(session, Agency, data.agency_id, "agency_id")
    secret = new_secret()
    client = ApiClient(
        client_id=client_id,
        name=data.name,
        role=data.role,
        source_system=data.source_system,
        agency_id=data.agency_id,
        secret_hash=hash_secret(secret),
    )
    session.add(client)
    await session.flush()
    return client, secret


async def update_client(session: AsyncSession, client_pk: int, data: ClientUpdate) -> ApiClient:
    client = await get_or_404(session, ApiClient, client_pk)
    for key, value in data.model_dump(exclude_unset=True).items():
        setattr(client, key, value)
    client.updated_at = utcnow()
    await session.flush()
    return client


async def rotate_secret(session: AsyncSession, client_pk: int) -> tuple[ApiClient, str]:
    client = await get_or_404(session, ApiClient, client_pk)
    secret = new_secret()
    client.secret_hash = hash_secret(secret)
    client.secret_rotated_at = client.updated_at = utcnow()
    await session.flush()
    return client, secret
