"""Who sees which cases — expressed as WHERE clauses, so every list, count, search, history
and single-case route obeys the same rule."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, select, true

from app.auth.deps import Principal
from app.auth.permissions import Role
from app.cases.models import Case, CaseAgency


def rule_of(principal: Principal) -> tuple[str, dict[str, Any]]:
    """The rule that applies to the caller, by name, and the values it needs: operators,
    admins and analysts see every case (analysts without personal data); agency staff see the
    cases their agency has ever been given; integration clients see what their source system
    submitted."""
    if principal.role in (Role.admin, Role.operator, Role.analyst):
        return "all", {}
    if principal.role is Role.agency:
        return "agency", {"visible_agency_id": principal.agency_id}
    if principal.role is Role.integration:
        return "source_system", {"visible_source_system": principal.source_system}
    return "none", {}


def clause(rule: str, values: dict[str, Any] | None = None) -> ColumnElement[bool]:
    """The rule as a WHERE clause: with the caller's values, or (none given) with bind
    parameters of the same names, for statements built once per rule and reused."""

    def value(name: str, type_: Any) -> Any:
        return values[name] if values is not None else bindparam(name, type_=type_)

    if rule == "all":
        return true()
    if rule == "agency":
        agency_id = value("visible_agency_id", CaseAgency.__table__.c.agency_id.type)
        return exists(
            select(CaseAgency.case_id).where(
                CaseAgency.case_id == Case.id, CaseAgency.agency_id == agency_id
            )
        )
    if rule == "source_system":
        source = value("visible_source_system", Case.__table__.c.source_system.type)
        return Case.source_system == source
    return ~true()


def visible(principal: Principal) -> ColumnElement[bool]:
    """The caller's rule with its values, for statements built per request."""
    rule, values = rule_of(principal)
    return clause(rule, values)


def sees_personal_data(principal: Principal) -> bool:
    return principal.role is not Role.analyst
