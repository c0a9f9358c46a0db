from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request, Response

from app.auth import service
from app.auth.deps import Authenticated
from app.auth.schemas import Me, TokenResponse
from app.core.config import Settings, app_settings
from app.core.db import SessionDep
from app.core.errors import Unprocessable

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

GrantType = Literal["password", "client_credentials", "refresh_token"]


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(value).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return client_id, secret


def _required(**fields: str | None) -> None:
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise Unprocessable(
            f"This grant needs the form field(s): {', '.join(missing)}",
            errors=[
                {"loc": ["body", m], "msg": "Field required", "type": "missing"} for m in missing
            ],
        )


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Get an access token (OAuth2 password, client_credentials or refresh_token grant)",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Throttled"}},
)
async def token(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: Annotated[Settings, Depends(app_settings)],
    grant_type: Annotated[GrantType, Form()],
    username: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=256)] = None,
    client_id: Annotated[str | None, Form(max_length=64)] = None,
    client_secret: Annotated[str | None, Form(max_length=256)] = None,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
    scope: Annotated[str | None, Form(max_length=1000)] = None,
) -> TokenResponse:
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    sessionmaker = request.app.state.sessionmaker
    tokens = service.TokenService(session, settings, service.LoginThrottler(sessionmaker, settings))
    if grant_type == "password":
        _required(username=username, password=password)
        return await tokens.password_grant(username, password, scope)
    if grant_type == "client_credentials":
        basic = _basic_credentials(request)
        if basic and not client_id:
            client_id, client_secret = basic
        _required(client_id=client_id, client_secret=client_secret)
        return await tokens.client_credentials_grant(client_id, client_secret, scope)
    _required(refresh_token=refresh_token)
    return await tokens.refresh_grant(refresh_token, scope, sessionmaker)


@router.post(
    "/revoke",
    status_code=200,
    summary="Revoke one of your refresh tokens, and the session it belongs to (RFC 7009)",
)
async def revoke(
    principal: Authenticated,
    session: SessionDep,
    token: Annotated[str, Form(max_length=256)],
) -> dict[str, str]:
    await service.revoke_token(session, principal, token)
    return {"status": "revoked"}


@router.get("/me", response_model=Me, summary="Who the token belongs to")
async def me(principal: Authenticated) -> Me:
    return service.me(principal)
