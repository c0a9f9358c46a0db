"""Roles and the scopes they grant: the one table that says who may do what.

Routes declare the scope they need (it shows in OpenAPI); object-level limits (which cases an
agency sees) live in the queries.
"""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    admin = "admin"
    operator = "operator"
    agency = "agency"
    integration = "integration"
    analyst = "analyst"


SCOPES: dict[str, str] = {
    "reference:read": "Read categories, territories and agencies",
    "reference:write": "Create, change and deactivate reference data",
    "accounts:manage": "Manage users and machine clients",
    "routing:read": "Read routing rules and deadline policies",
    "routing:write": "Change routing rules, deadline policies and the calendar",
    "cases:read": "Read cases within the caller's reach",
    "cases:submit": "Submit incidents and appeals",
    "cases:triage": "Assign, reject, reopen and edit cases",
    "cases:answer": "Accept, answer, close and return the agency's cases",
    "stats:read": "Read statistics and exports within the caller's reach",
    "webhooks:manage": "Manage webhook subscriptions within the caller's reach",
    "audit:read": "Read the record of who saw personal data",
    "webhooks:admin": "Manage the webhook URL allowlist (internal hosts and networks)",
}

_EVERYONE = {"reference:read", "cases:read"}

ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.admin: frozenset(
        _EVERYONE
        | {"reference:write", "accounts:manage", "routing:read", "routing:write"}
        | {"stats:read", "webhooks:manage", "webhooks:admin", "audit:read"}
    ),
    Role.operator: frozenset(
        _EVERYONE | {"routing:read", "cases:submit", "cases:triage", "stats:read"}
    ),
    Role.agency: frozenset(_EVERYONE | {"cases:answer", "stats:read", "webhooks:manage"}),
    Role.integration: frozenset(_EVERYONE | {"cases:submit", "webhooks:manage"}),
    Role.analyst: frozenset(_EVERYONE | {"stats:read"}),
}

assert all(scope in SCOPES for scopes in ROLE_SCOPES.values() for scope in scopes)
