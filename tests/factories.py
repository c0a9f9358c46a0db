"""Factories: objects with sensible defaults, every field overridable."""

from __future__ import annotations

import itertools
from functools import lru_cache

from app.accounts.models import ApiClient, User
from app.core.passwords import hash_secret
from app.reference.models import Agency, AgencySector, Category, Territory

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery"


@lru_cache
def password_hash() -> str:
    return hash_secret(PASSWORD)  # hashed once: Argon2 is slow on purpose


def category(**kw) -> Category:
    n = next(_seq)
    return Category(
        **{"code": f"cat-{n}", "name_ru": f"Категория {n}", "name_en": f"Category {n}", **kw}
    )


def territory(**kw) -> Territory:
    n = next(_seq)
    return Territory(
        **{"code": f"ter-{n}", "name": f"Территория {n}", "kind": "municipal_district", **kw}
    )


def agency(**kw) -> Agency:
    n = next(_seq)
    return Agency(
        **{
            "code": f"agency-{n}",
            "name": f"Ведомство {n}",
            "kind": "municipal_administration",
            **kw,
        }
    )


def agency_sector(agency_id: int, category_id: int) -> AgencySector:
    return AgencySector(agency_id=agency_id, category_id=category_id)


def user(**kw) -> User:
    n = next(_seq)
    return User(
        **{
            "username": f"user{n}",
            "full_name": f"Пользователь {n}",
            "role": "operator",
            "password_hash": password_hash(),
            **kw,
        }
    )


def api_client(**kw) -> ApiClient:
    n = next(_seq)
    return ApiClient(
        **{
            "client_id": f"client-{n}",
            "name": f"System {n}",
            "role": "integration",
            "source_system": f"system-{n}",
            "secret_hash": password_hash(),
            **kw,
        }
    )
