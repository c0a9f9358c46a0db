"""Imports every table module, so the metadata (for Alembic and for reference checks) is whole."""

from app.accounts.models import ApiClient, User
from app.auth.models import LoginThrottle, RefreshToken
from app.cases.models import Case, CaseAgency, CaseEvent
from app.core.idempotency import IdempotencyRecord
from app.deadlines.models import CalendarException, DeadlinePolicy
from app.privacy.models import PersonalDataAccess
from app.reference.models import Agency, AgencySector, Category, Territory
from app.routing.models import RoutingRule
from app.stats.models import StatsSnapshot
from app.webhooks.models import (
    CaseOverdue,
    WebhookAllowlistEntry,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

__all__ = [
    "Agency",
    "AgencySector",
    "ApiClient",
    "CalendarException",
    "Case",
    "CaseAgency",
    "CaseEvent",
    "CaseOverdue",
    "Category",
    "DeadlinePolicy",
    "IdempotencyRecord",
    "LoginThrottle",
    "PersonalDataAccess",
    "RefreshToken",
    "RoutingRule",
    "StatsSnapshot",
    "Territory",
    "User",
    "WebhookAllowlistEntry",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSubscription",
]
