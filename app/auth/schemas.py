from __future__ import annotations

from pydantic import BaseModel

from app.auth.permissions import Role


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str | None = None
    scope: str


class Me(BaseModel):
    kind: str
    id: int
    name: str
    role: Role
    scopes: list[str]
    agency_id: int | None
    source_system: str | None
