"""Who sees which cases — expressed as WHERE clauses, so every list, count, search, history
and single-case route obeys the same rule."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, select, true

from app.auth.deps import Principal
from app.auth.permissions import Role
from app.cases.models import Case, CaseAgency


def visible(principal: Principal) -> ColumnElement[bool]:
    """Operators, admins and analysts see every case (analysts without personal data);
    agency staff see the cases their agency has ever been given; integration clients see
    what their source system submitted."""
    if principal.role in (Role.admin, Role.operator, Role.analyst):
        return true()
    if principal.role is Role.agency:
        return exists(
            select(CaseAgency.case_id).where(
                CaseAgency.case_id == Case.id, CaseAgency.agency_id == principal.agency_id
            )
        )
    if principal.role is Role.integration:
        return Case.source_system == principal.source_system
    return ~true()


def sees_personal_data(principal: Principal) -> bool:
    return principal.role is not Role.analyst
