from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.accounts import service
from app.accounts.models import ApiClient, User
from app.accounts.schemas import (
    ClientCreate,
    ClientRead,
    ClientUpdate,
    ClientWithSecret,
    PasswordIssued,
    PasswordReset,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.auth.deps import requires
from app.auth.permissions import Role
from app.core.db import SessionDep
from app.core.references import get_or_404
from app.core.schemas import IdFilter, Page, PageParams, page_params

router = APIRouter(
    prefix="/api/v1",
    tags=["accounts"],
    responses={404: {"description": "No such record"}, 409: {"description": "Name taken"}},
)

Admin = requires("accounts:manage")
PageDep = Annotated[PageParams, Depends(page_params)]


@router.get("/users", response_model=Page[UserRead])
async def list_users(
    _: Admin,
    session: SessionDep,
    page: PageDep,
    role: Role | None = None,
    agency_id: IdFilter = None,
    is_active: bool | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
):
    rows, total = await service.list_users(
        session, page, role=role, agency_id=agency_id, is_active=is_active, q=q
    )
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(_: Admin, session: SessionDep, data: UserCreate):
    return await service.create_user(session, data)


@router.get("/users/{user_id}", response_model=UserRead)
async def get_user(_: Admin, session: SessionDep, user_id: int):
    return await get_or_404(session, User, user_id)


@router.patch("/users/{user_id}", response_model=UserRead, summary="Change or disable a user")
async def update_user(actor: Admin, session: SessionDep, user_id: int, data: UserUpdate):
    return await service.update_user(session, actor, user_id, data)


@router.post(
    "/users/{user_id}/reset-password",
    response_model=PasswordIssued,
    summary="Set a new password (or generate one, shown once); ends the user's sessions",
)
async def reset_password(_: Admin, session: SessionDep, user_id: int, data: PasswordReset):
    user, generated = await service.reset_password(session, user_id, data)
    return PasswordIssued(user=UserRead.model_validate(user), password=generated)


@router.get("/clients", response_model=Page[ClientRead])
async def list_clients(
    _: Admin,
    session: SessionDep,
    page: PageDep,
    role: Role | None = None,
    is_active: bool | None = None,
):
    rows, total = await service.list_clients(session, page, role=role, is_active=is_active)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/clients",
    response_model=ClientWithSecret,
    status_code=201,
    summary="Register a machine client; its secret is shown once",
)
async def create_client(_: Admin, session: SessionDep, data: ClientCreate):
    client, secret = await service.create_client(session, data)
    return ClientWithSecret(client=ClientRead.model_validate(client), client_secret=secret)


@router.get("/clients/{client_pk}", response_model=ClientRead)
async def get_client(_: Admin, session: SessionDep, client_pk: int):
    return await get_or_404(session, ApiClient, client_pk)


@router.patch("/clients/{client_pk}", response_model=ClientRead, summary="Rename or disable")
async def update_client(_: Admin, session: SessionDep, client_pk: int, data: ClientUpdate):
    return await service.update_client(session, client_pk, data)


@router.post(
    "/clients/{client_pk}/rotate-secret",
    response_model=ClientWithSecret,
    summary="Issue a new secret (shown once); the old one stops working",
)
async def rotate_secret(_: Admin, session: SessionDep, client_pk: int):
    client, secret = await service.rotate_secret(session, client_pk)
    return ClientWithSecret(client=ClientRead.model_validate(client), client_secret=secret)
