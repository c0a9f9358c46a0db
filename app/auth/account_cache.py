"""What every bearer token is checked against — the account's existence, `is_active`, when its
credentials last changed, its role and agency — remembered per process for a few seconds, so
a client's stream of requests does not read its own account row on every one of them.

The bound: ACCOUNT_CACHE_SECONDS (5 s). A change made through this process (disabling,
deleting, a password reset, a rotated secret, a new role or agency; any ORM write to
`user_account` or `api_client`) forgets every remembered account once it commits, so that
process refuses the old token at once. Other worker processes, and writes that bypass the ORM
(plain SQL), are noticed when the entry runs out: a disabled account is refused everywhere
within 5 seconds. Access tokens already live 15 minutes (clients' 60); the cache adds at most
those seconds to the time a revoked person keeps access on another worker. Only accounts that
exist are remembered (an unknown subject is read every time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session

from app.accounts.models import ApiClient, User

ACCOUNT_CACHE_SECONDS = 5.0
ACCOUNT_CACHE_SIZE = 10_000
_ACCOUNT_MODELS = (User, ApiClient)
_CHANGED = "accounts_changed"

# Bumped whenever a transaction that wrote accounts commits: every cache forgets its entries.
_generation = 0


@dataclass(frozen=True, slots=True)
class Account:
    """The fields of a User or ApiClient that authentication looks at."""

    kind: str  # "user" or "client"
    id: int
    name: str
    role: str
    agency_id: int | None
    source_system: str | None
    is_active: bool
    credentials_changed: int  # epoch seconds of the last password change / secret rotation

    @classmethod
    def of(cls, obj: User | ApiClient) -> Account:
        if isinstance(obj, User):
            return cls(
                "user",
                obj.id,
                obj.username,
                obj.role,
                obj.agency_id,
                None,
                obj.is_active,
                int(obj.password_changed_at.timestamp()),
            )
        return cls(
            "client",
            obj.id,
            obj.client_id,
            obj.role,
            obj.agency_id,
            obj.source_system,
            obj.is_active,
            int(obj.secret_rotated_at.timestamp()),
        )


class AccountCache:
    """subject ("user:7") -> Account, each for `seconds`; bounded (oldest out first)."""

    def __init__(
        self,
        seconds: float = ACCOUNT_CACHE_SECONDS,
        size: int = ACCOUNT_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[Account, float, int]] = {}

    def get(self, subject: str) -> Account | None:
        entry = self._entries.get(subject)
        if entry is None:
            return None
        account, until, generation = entry
        if generation != _generation or self.clock() >= until:
            self._entries.pop(subject, None)
            return None
        return account

    def remember(self, subject: str, account: Account) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.size:
            now = self.clock()
            for key in [k for k, (_, until, _) in self._entries.items() if until <= now]:
                del self._entries[key]
            while len(self._entries) >= self.size:
                del self._entries[next(iter(self._entries))]
        self._entries[subject] = (account, self.clock() + self.seconds, _generation)


def forget_all() -> None:
    """Every cache of this process drops its entries (also called on account writes)."""
    global _generation
    _generation += 1


def _touches_accounts(objects) -> bool:
    return any(isinstance(obj, _ACCOUNT_MODELS) for obj in objects)


@event.listens_for(Session, "after_flush")
def _note_flushed_accounts(session: Session, _context) -> None:
    if _touches_accounts((*session.new, *session.dirty, *session.deleted)):
        session.info[_CHANGED] = True
        forget_all()


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_account_writes(state) -> None:
    mapper = state.bind_mapper
    writes = state.is_update or state.is_delete
    if writes and mapper is not None and issubclass(mapper.class_, _ACCOUNT_MODELS):
        state.session.info[_CHANGED] = True
        forget_all()


@event.listens_for(Session, "after_commit")
def _forget_after_commit(session: Session) -> None:
    # Again after the commit: a request that read the old row between the write and the
    # commit must not keep it.
    if session.info.pop(_CHANGED, False):
        forget_all()
