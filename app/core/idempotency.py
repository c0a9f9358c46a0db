"""`Idempotency-Key` for creations and workflow actions (the IETF httpapi draft's semantics).

A client that is not sure its POST arrived sends it again with the same key: within 24 hours the
first result is returned (with `Idempotent-Replayed: true`) and nothing is done twice; the same
key on a different request (another body or path) is 422. The key is recorded in the request's
own transaction, so a request that fails leaves no record and may simply be retried.

Concurrent requests with one key: the record is inserted first, in a savepoint, so on PostgreSQL
the second request waits on the unique index until the first commits and then replays its
result; where that is not possible (SQLite's snapshot) the second gets 409 and retries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import SessionDep, savepoint
from app.core.errors import Conflict, Unprocessable
from app.core.types import UTCDateTime, utcnow

TTL = timedelta(hours=24)
REPLAYED_HEADERS = ("ETag", "Location")
KEY_HEADER = "Idempotency-Key"


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    __table_args__ = (
        UniqueConstraint("key", "owner"),
        Index("ix_idempotency_record_expires_at", "expires_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    owner: str = Field(sa_column=Column(String(64), nullable=False))
    key: str = Field(sa_column=Column(String(255), nullable=False))
    method: str = Field(sa_column=Column(String(8), nullable=False))
    path: str = Field(sa_column=Column(String(500), nullable=False))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    response_body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    response_headers: dict[str, str] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


def _valid_key(value: str) -> bool:
    return 1 <= len(value) <= 255 and all(0x21 <= ord(c) <= 0x7E for c in value)


def _fingerprint(method: str, path: str, body: bytes) -> str:
    """The request's identity: method, path and body, with JSON compared by meaning (key order
    and whitespace do not make a different request)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


@dataclass
class Idempotency:
    """Per-request handle: `start()` before doing the work, `remember()` after it."""

    session: AsyncSession
    key: str | None
    method: str
    path: str
    body: bytes
    record: IdempotencyRecord | None = None

    async def start(self, owner: str) -> Response | None:
        """None: go ahead (and `remember` the result). A Response: the first result, replayed."""
        if self.key is None:
            return None
        request_hash = _fingerprint(self.method, self.path, self.body)
        existing = await self._find(owner)
        if existing is not None:
            return self._replay(existing, request_hash)
        now = utcnow()
        record = IdempotencyRecord(
            owner=owner,
            key=self.key,
            method=self.method,
            path=self.path,
            request_hash=request_hash,
            created_at=now,
            expires_at=now + TTL,
        )
        try:
            async with savepoint(self.session):
                self.session.add(record)
                await self.session.flush()
        except IntegrityError:
            existing = await self._find(owner)
            if existing is None or existing.status_code is None:
                raise Conflict(
                    f"A request with this {KEY_HEADER} is still being processed; retry shortly",
                    code="idempotency-key-in-use",
                    headers={"Retry-After": "1"},
                ) from None
            return self._replay(existing, request_hash)
        self.record = record
        return None

    def remember(
        self, response: Response, status_code: int, result: BaseModel | bytes | Any
    ) -> None:
        """Store what the client is about to receive (in the same transaction as the work):
        a model, plain data, or the JSON body already written."""
        if self.record is None:
            return
        if isinstance(result, bytes):
            body = result.decode()
        else:
            content = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
            body = orjson.dumps(content).decode()
        self.record.status_code = response.status_code or status_code
        self.record.response_body = body
        self.record.response_headers = {
            h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers
        }
        self.session.add(self.record)

    async def _find(self, owner: str) -> IdempotencyRecord | None:
        stmt = select(IdempotencyRecord).where(
            IdempotencyRecord.owner == owner, IdempotencyRecord.key == self.key
        )
        record = (await self.session.execute(stmt)).scalars().first()
        if record is not None and record.expires_at <= utcnow():
            await self.session.delete(record)
            await self.session.flush()
            return None
        return record

    def _replay(self, record: IdempotencyRecord, request_hash: str) -> Response:
        if record.request_hash != request_hash:
            raise Unprocessable(
                f"{KEY_HEADER} {self.key!r} was already used for a different request "
                f"({record.method} {record.path} with another body); use a new key",
                code="idempotency-key-reused",
                errors=[
                    {
                        "loc": ["header", KEY_HEADER],
                        "msg": "already used for a different request",
                        "type": "idempotency-key-reused",
                    }
                ],
            )
        if record.status_code is None:  # only visible to our own transaction: cannot happen
            raise Conflict(f"The request with this {KEY_HEADER} is still being processed")
        headers = dict(record.response_headers or {})
        headers["Idempotent-Replayed"] = "true"
        return Response(
            content=(record.response_body or "").encode(),
            status_code=record.status_code,
            media_type="application/json",
            headers=headers,
        )


async def idempotency(
    request: Request,
    session: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=KEY_HEADER,
            description="Any unique string (a UUID): a repeat within 24 hours returns the first "
            "result instead of acting twice; the same key with another body is 422",
            max_length=255,
        ),
    ] = None,
) -> Idempotency:
    if idempotency_key is not None and not _valid_key(idempotency_key):
        raise Unprocessable(
            f"{KEY_HEADER}: 1 to 255 printable ASCII characters, no spaces",
            errors=[{"loc": ["header", KEY_HEADER], "msg": "invalid key", "type": "value_error"}],
        )
    if idempotency_key is None:  # nothing to record or replay: neither path nor body is read
        return Idempotency(session=session, key=None, method=request.method, path="", body=b"")
    return Idempotency(
        session=session,
        key=idempotency_key,
        method=request.method,
        path=request.url.path,
        body=await request.body(),
    )


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]


async def purge_expired(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete records past their 24 hours (the worker calls this periodically)."""
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or utcnow()))
    )
    return result.rowcount or 0
