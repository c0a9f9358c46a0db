"""Imports every table module, so the metadata (for Alembic and for reference checks) is whole."""

from app.accounts.models import ApiClient, User
from app.auth.models import LoginThrottle, RefreshToken
from app.reference.models import Agency, AgencySector, Category, Territory

__all__ = [
    "Agency",
    "AgencySector",
    "ApiClient",
    "Category",
    "LoginThrottle",
    "RefreshToken",
    "Territory",
    "User",
]
