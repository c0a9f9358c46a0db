"""The webhook worker (`python -m app worker`): fans the outbox out, delivers, retries, and runs
the periodic jobs (overdue cases, expired idempotency keys).

Delivery is at least once. A batch of due deliveries is claimed in one short transaction — on
PostgreSQL with FOR UPDATE SKIP LOCKED, and with a lease (locked_until) so other workers pass
them by — then sent concurrently over one shared HTTP client, and the results are written back
in bulk in one more transaction. A worker killed mid-batch loses nothing: when its lease runs
out the deliveries are claimed again. Results are written only under the worker's own lease
token, so a worker that lost its lease cannot overwrite another's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cases.models import CaseAgency
from app.core.config import Settings
from app.core.idempotency import purge_expired
from app.core.types import utcnow
from app.stats.refresh import refresh_snapshots
from app.webhooks import signing
from app.webhooks.models import Audience, DeliveryStatus, WebhookDelivery, WebhookSubscription
from app.webhooks.outbox import dispatch, purge_finished
from app.webhooks.overdue import mark_overdue
from app.webhooks.service import https_required, load_allowlist, signing_secrets
from app.webhooks.ssrf import Allowlist, Resolver, Target, UrlRefused, check_url

log = logging.getLogger("regiondesk.webhooks")

USER_AGENT = "RegionDesk-Webhooks/1"
MIN_RETRY_SECONDS = 1.0
ERROR_LENGTH = 500
MAX_REPLY_BYTES = 64 * 1024  # receivers answer briefly; more is not read
# A literal, not a bound parameter: PostgreSQL's generic plans use the partial index
# ix_webhook_delivery_due (WHERE status = 'pending') only when the query names the value.
PENDING = literal_column(f"'{DeliveryStatus.pending.value}'")


def retry_at(
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    settings: Settings,
    rng: Callable[[], float] = random.random,
) -> datetime | None:
    """When to try again after `attempts` failed attempts, or None when the retry window
    (72 hours from the first attempt by default) is over. Exponential backoff with full
    jitter: a random delay up to base·2^(attempts-1), capped, and never past the window's end."""
    window_end = first_attempt_at + timedelta(hours=settings.webhook_retry_window_hours)
    if now >= window_end:
        return None
    ceiling = min(
        settings.webhook_retry_max_seconds,
        settings.webhook_retry_base_seconds * 2 ** min(max(attempts - 1, 0), 32),
    )
    delay = max(MIN_RETRY_SECONDS, rng() * ceiling)
    return min(now + timedelta(seconds=delay), window_end)


@dataclass(frozen=True)
class Claimed:
    id: int
    token: str
    event_id: int
    event_type: str
    case_id: int | None
    payload: str
    attempts: int
    first_attempt_at: datetime | None
    url: str
    secrets: tuple[str, ...]
    owner_role: str
    owner_agency_id: int | None


@dataclass(frozen=True)
class Outcome:
    delivery: Claimed
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _short(text: str) -> str:
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    limit = settings.webhook_concurrency
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
        follow_redirects=False,  # a redirect could lead anywhere; it counts as a failure
        trust_env=False,  # no proxies from the environment: we connect to the checked address
        headers={"User-Agent": USER_AGENT},
    )


class Worker:
    """One worker process. Each step takes `now`, so tests drive time exactly."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        http: httpx.AsyncClient | None = None,
        resolver: Resolver | None = None,
        rng: Callable[[], float] = random.random,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.http = http or make_http_client(settings)
        self._own_http = http is None
        self.resolver = resolver
        self.rng = rng
        self.name = name or f"worker-{uuid.uuid4().hex[:8]}"
        rounds = math.ceil(settings.webhook_batch_size / settings.webhook_concurrency)
        # Longer than a whole batch can take (every round timing out, plus DNS), so a live
        # worker never loses its lease; a dead one's deliveries come back after it.
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds * (rounds + 2) + 60)
        self._wake = asyncio.Event()

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    # --- the steps ---------------------------------------------------------------------------

    async def dispatch_once(self, now: datetime | None = None) -> int:
        """Fans out one batch of outbox rows; returns how many it took."""
        async with self.sessionmaker() as session:
            taken = await dispatch(
                session, now=now or utcnow(), batch=self.settings.webhook_batch_size
            )
            await session.commit()
        if taken:
            self._wake.set()
        return taken

    async def periodic_once(self, now: datetime | None = None) -> int:
        """Marks one batch of newly overdue cases (one overdue event per deadline), drops
        expired Idempotency-Key records and deliveries past their retention; returns how many
        cases it marked."""
        now = now or utcnow()
        async with self.sessionmaker() as session:
            marked = await mark_overdue(session, now=now, batch=self.settings.webhook_overdue_batch)
            await purge_expired(session, now)
            retention = timedelta(days=self.settings.webhook_retention_days)
            await purge_finished(
                session, before=now - retention, batch=self.settings.webhook_batch_size
            )
            await session.commit()
        return marked

    async def stats_once(self, now: datetime | None = None) -> int:
        """Recomputes the stats snapshots people keep asking for before they expire, drops the
        ones nobody asks for (app.stats.refresh); returns how many it recomputed."""
        return await refresh_snapshots(self.sessionmaker, self.settings, now or utcnow())

    async def claim(self, now: datetime | None = None) -> list[Claimed]:
        """Takes a batch of due deliveries under a lease; the transaction is over on return."""
        now = now or utcnow()
        d, s = WebhookDelivery, WebhookSubscription
        token = f"{self.name}:{uuid.uuid4().hex[:12]}"
        async with self.sessionmaker() as session:
            ids = (
                (
                    await session.execute(
                        select(d.id)
                        .join(s, s.id == d.subscription_id)
                        .where(
                            d.status == PENDING,
                            d.next_attempt_at <= now,
                            or_(d.locked_until.is_(None), d.locked_until < now),
                            s.is_active.is_(True),
                        )
                        .order_by(d.priority, d.next_attempt_at, d.id)
                        .limit(self.settings.webhook_batch_size)
                        .with_for_update(skip_locked=True, of=d)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return []
            lease = {"locked_until": now + self.lease, "locked_by": token}
            await session.execute(update(d).where(d.id.in_(ids)).values(**lease))
            rows = await session.execute(
                select(
                    d.id,
                    d.event_id,
                    d.event_type,
                    d.case_id,
                    d.payload,
                    d.attempts,
                    d.first_attempt_at,
                    d.priority,
                    d.next_attempt_at,
                    s.url,
                    s.secret,
                    s.previous_secret,
                    s.previous_secret_expires_at,
                    s.owner_role,
                    s.owner_agency_id,
                )
                .join(s, s.id == d.subscription_id)
                .where(d.id.in_(ids))
                .order_by(d.priority, d.next_attempt_at, d.id)
            )
            claimed = [
                Claimed(
                    id=r.id,
                    token=token,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    case_id=r.case_id,
                    payload=r.payload,
                    attempts=r.attempts,
                    first_attempt_at=r.first_attempt_at,
                    url=r.url,
                    secrets=signing_secrets(
                        r.secret, r.previous_secret, r.previous_secret_expires_at, now
                    ),
                    owner_role=r.owner_role,
                    owner_agency_id=r.owner_agency_id,
                )
                for r in rows.all()
            ]
            await session.commit()
        return claimed

    async def deliver_once(self, now: datetime | None = None) -> int:
        """Claims a batch, sends it concurrently, records the outcomes; returns the count."""
        claimed = await self.claim(now)
        if not claimed:
            return 0
        outcomes = await self.send(claimed)
        await self.record(outcomes, now or utcnow())
        return len(claimed)

    async def send(self, claimed: list[Claimed]) -> list[Outcome]:
        async with self.sessionmaker() as session:
            allowlist = await load_allowlist(session)
        targets = await self._targets({c.url for c in claimed}, allowlist)
        gate = asyncio.Semaphore(self.settings.webhook_concurrency)

        async def one(delivery: Claimed) -> Outcome:
            async with gate:
                return await self._attempt(delivery, targets[delivery.url])

        return list(await asyncio.gather(*(one(c) for c in claimed)))

    async def _targets(
        self, urls: set[str], allowlist: Allowlist
    ) -> dict[str, Target | UrlRefused]:
        """Each distinct URL checked once per batch (DNS included), concurrently."""

        async def check(url: str) -> Target | UrlRefused:
            try:
                async with asyncio.timeout(self.settings.webhook_timeout_seconds):
                    return await check_url(
                        url,
                        allowlist,
                        require_https=https_required(self.settings),
                        resolver=self.resolver,
                    )
            except UrlRefused as exc:
                return exc
            except TimeoutError:
                return UrlRefused("DNS resolution timed out")

        ordered = sorted(urls)
        return dict(zip(ordered, await asyncio.gather(*map(check, ordered)), strict=True))

    async def _attempt(self, delivery: Claimed, target: Target | UrlRefused) -> Outcome:
        if isinstance(target, UrlRefused):
            return Outcome(delivery, None, _short(f"refused: {target}"))
        body = delivery.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "Host": target.host_header,
            signing.SIGNATURE_HEADER: signing.signature_header(
                delivery.secrets, int(time.time()), body
            ),
            signing.EVENT_ID_HEADER: str(delivery.event_id),
            signing.EVENT_TYPE_HEADER: delivery.event_type,
            signing.DELIVERY_ID_HEADER: str(delivery.id),
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        timeout = self.settings.webhook_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                request = self.http.build_request(
                    "POST", target.connect_url, content=body, headers=headers, extensions=extensions
                )
                response = await self.http.send(request, stream=True)
                try:
                    reply = await _read_some(response)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(delivery, None, f"timeout after {timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(delivery, None, _short(f"{type(exc).__name__}: {exc}"))
        if response.is_success:
            return Outcome(delivery, response.status_code, None)
        detail = f"HTTP {response.status_code}"
        if response.is_redirect:
            detail += " (redirects are not followed)"
        snippet = reply[:200].decode(errors="replace").strip()
        return Outcome(delivery, response.status_code, _short(f"{detail}: {snippet}".rstrip(": ")))

    async def record(self, outcomes: list[Outcome], now: datetime) -> None:
        """Writes every outcome in one transaction: two bulk UPDATEs (deliveries, and the
        agencies' receipt of their cases), each executed once for the whole batch."""
        rows: list[dict[str, Any]] = []
        receipts: list[dict[str, Any]] = []
        for outcome in outcomes:
            d = outcome.delivery
            first = d.first_attempt_at or now
            attempts = d.attempts + 1
            if outcome.ok:
                status, next_at, delivered_at = DeliveryStatus.delivered, now, now
                if d.case_id is not None and d.owner_role == Audience.agency:
                    receipts.append(
                        {"b_case": d.case_id, "b_agency": d.owner_agency_id, "b_at": now}
                    )
            else:
                retry = retry_at(attempts, first, now, self.settings, self.rng)
                status = DeliveryStatus.pending if retry else DeliveryStatus.failed
                next_at, delivered_at = retry or now, None
            rows.append(
                {
                    "b_id": d.id,
                    "b_token": d.token,
                    "b_status": status.value,
                    "b_attempts": attempts,
                    "b_next": next_at,
                    "b_first": first,
                    "b_last": now,
                    "b_delivered": delivered_at,
                    "b_code": outcome.status_code,
                    "b_error": outcome.error,
                }
            )
        table = WebhookDelivery.__table__
        c = table.c
        stmt = (
            update(table)
            .where(c.id == bindparam("b_id"), c.locked_by == bindparam("b_token"))
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                next_attempt_at=bindparam("b_next"),
                first_attempt_at=bindparam("b_first"),
                last_attempt_at=bindparam("b_last"),
                delivered_at=bindparam("b_delivered"),
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                locked_until=None,
                locked_by=None,
            )
        )
        async with self.sessionmaker() as session:
            await session.execute(stmt, rows)
            if receipts:
                ca = CaseAgency.__table__.c
                await session.execute(
                    update(CaseAgency.__table__)
                    .where(
                        ca.case_id == bindparam("b_case"),
                        ca.agency_id == bindparam("b_agency"),
                        ca.delivered_at.is_(None),
                    )
                    .values(delivered_at=bindparam("b_at")),
                    receipts,
                )
            await session.commit()

    # --- the loops ---------------------------------------------------------------------------

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """One pass of everything (for cron and tests): overdue marks, the stats snapshots'
        refresh, the whole outbox, and every delivery due now."""
        done = {"overdue": await self.periodic_once(now), "dispatched": 0, "delivered": 0}
        done["stats_refreshed"] = await self.stats_once(now)
        while (n := await self.dispatch_once(now)) > 0:
            done["dispatched"] += n
            if n < self.settings.webhook_batch_size:
                break
        while (n := await self.deliver_once(now)) > 0:
            done["delivered"] += n
            if n < self.settings.webhook_batch_size:
                break
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; a batch in flight is finished, never abandoned."""
        settings = self.settings
        batch, poll = settings.webhook_batch_size, settings.webhook_poll_seconds
        await asyncio.gather(
            self._loop(self.dispatch_once, stop, batch, poll),
            self._loop(self.deliver_once, stop, batch, poll, self._wake),
            self._loop(
                self.periodic_once,
                stop,
                settings.webhook_overdue_batch,
                settings.webhook_overdue_interval_seconds,
            ),
            self._loop(
                self.stats_once, stop, settings.stats_refresh_batch, settings.stats_refresh_seconds
            ),
        )

    async def _loop(
        self,
        step: Callable[[], Any],
        stop: asyncio.Event,
        batch: int,
        idle_seconds: float,
        wake: asyncio.Event | None = None,
    ) -> None:
        """Repeats the step at once while it finds full batches, else rests idle_seconds."""
        failures = 0
        while not stop.is_set():
            try:
                done = await step()
                failures = 0
            except Exception:  # the database or the network is down: log, back off, go on
                failures += 1
                log.exception("webhook worker step %s failed", getattr(step, "__name__", step))
                done = 0
            if done < batch:
                pause = idle_seconds * min(2**failures, 30) if failures else idle_seconds
                await _sleep(pause, stop, wake)


async def _sleep(seconds: float, stop: asyncio.Event, wake: asyncio.Event | None) -> None:
    """Sleeps until the time is up, the worker is stopped, or new work wakes it."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        if wake is not None:
            wake.clear()


async def _read_some(response: httpx.Response) -> bytes:
    """The start of the reply. A short reply is read to its end, so the connection goes back
    to the pool for the next delivery; a long one is cut off (and its connection closed)."""
    reply = b""
    try:
        async for chunk in response.aiter_raw():
            reply += chunk
            if len(reply) > MAX_REPLY_BYTES:
                break
    except httpx.HTTPError:
        pass
    return reply


async def serve(settings: Settings, *, once: bool = False) -> dict[str, int] | None:
    """The `worker` command: runs until SIGTERM or SIGINT (or one pass with once=True)."""
    from app.core.db import make_engine, make_sessionmaker

    engine = make_engine(settings)
    worker = Worker(settings, make_sessionmaker(engine))
    try:
        if once:
            return await worker.run_once()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("webhook worker %s started", worker.name)
        await worker.run(stop)
        log.info("webhook worker %s stopped", worker.name)
        return None
    finally:
        await worker.aclose()
        await engine.dispose()
