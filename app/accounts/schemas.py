from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints, model_validator

from app.auth.permissions import Role
from app.core.schemas import Input, Output, Patch

Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{2,63}$")]
Password = Annotated[str, StringConstraints(min_length=12, max_length=256)]
SourceSystem = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{1,63}$")]
MACHINE_ROLES = (Role.integration, Role.agency, Role.analyst)


def check_binding(role: Role | None, agency_id: int | None, source: str | None = None) -> None:
    """An agency account is bound to one agency; an integration client to one source system."""
    if role is None:
        return
    if role is Role.agency and agency_id is None:
        raise ValueError("agency_id is required for the role 'agency'")
    if role is not Role.agency and agency_id is not None:
        raise ValueError(f"agency_id is only for the role 'agency', not '{role}'")
    if role is Role.integration and not source:
        raise ValueError("source_system is required for the role 'integration'")
    if role is not Role.integration and source:
        raise ValueError(f"source_system is only for the role 'integration', not '{role}'")


class UserCreate(Input):
    username: Username
    password: Password
    role: Role
    agency_id: int | None = None
    full_name: Annotated[str, StringConstraints(max_length=200)] = ""
    email: EmailStr | None = None

    @model_validator(mode="after")
    def _binding(self):
        check_binding(self.role, self.agency_id)
        return self


class UserUpdate(Patch):
    NOT_NULL = frozenset({"role", "full_name", "is_active"})

    role: Role | None = None
    agency_id: int | None = None
    full_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    email: EmailStr | None = None
    is_active: bool | None = Field(default=None, description="false disables the account")


class PasswordReset(Input):
    password: Password | None = Field(
        default=None, description="The new password; leave out to have one generated"
    )


class UserRead(Output):
    id: int
    username: str
    full_name: str
    email: str | None
    role: Role
    agency_id: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class PasswordIssued(Output):
    user: UserRead
    password: str | None = Field(description="Shown once, only when it was generated")


class ClientCreate(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    role: Role = Role.integration
    source_system: SourceSystem | None = None
    agency_id: int | None = None
    client_id: Username | None = Field(
        default=None, description="Leave out to derive it from source_system or have it generated"
    )

    @model_validator(mode="after")
    def _binding(self):
        if self.role not in MACHINE_ROLES:
            raise ValueError(f"a machine client's role is one of {', '.join(MACHINE_ROLES)}")
        check_binding(self.role, self.agency_id, self.source_system)
        return self


class ClientUpdate(Patch):
    NOT_NULL = frozenset({"name", "is_active"})

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    is_active: bool | None = None


class ClientRead(Output):
    id: int
    client_id: str
    name: str
    role: Role
    source_system: str | None
    agency_id: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime


class ClientWithSecret(Output):
    client: ClientRead
    client_secret: str = Field(description="Shown once; only its hash is kept")
