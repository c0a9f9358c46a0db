"""Imports every table module, so the metadata (for Alembic and for reference checks) is whole."""

from app.accounts.models import ApiClient, User
from app.auth.models import LoginThrottle, RefreshToken
from app.cases.models import Case, CaseAgency, CaseEvent
from app.core.idempotency import IdempotencyRecord
from app.deadlines.models import CalendarException, DeadlinePolicy
from app.reference.models import Agency, AgencySector, Category, Territory
from app.routing.models import RoutingRule

__all__ = [
    "Agency",
    "AgencySector",
    "ApiClient",
    "CalendarException",
    "Case",
    "CaseAgency",
    "CaseEvent",
    "Category",
    "DeadlinePolicy",
    "IdempotencyRecord",
    "LoginThrottle",
    "RefreshToken",
    "RoutingRule",
    "Territory",
    "User",
]
