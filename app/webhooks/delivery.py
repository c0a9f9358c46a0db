"""The webhook worker (`python -m app worker`): fans the outbox out, delivers, retries, and runs
the periodic jobs (overdue cases, expired idempotency keys).

Delivery is at least once. Due deliveries are claimed in one short transaction — on PostgreSQL
with FOR UPDATE SKIP LOCKED, and with a lease (locked_until) so other workers pass them by —
sent concurrently over keep-alive connections (app/webhooks/http.py), and their results written
back in bulk. A worker killed mid-way loses nothing: when its lease runs out the deliveries are
claimed again. Results are written only under the worker's own lease token, so a worker that
lost its lease cannot overwrite another's outcome; and an attempt that could not end before the
lease does is not started (the delivery is handed back), so two workers never send the same
delivery at the same time.

Fairness: a receiver (an origin: scheme, host, port) gets at most `webhook_host_concurrency`
requests at a time, and the running worker holds at most a share of deliveries for it (HOLD_ROUNDS
times that many, claimed per subscription) and claims more for it only once half of them are
done. So a slow or dead receiver ties up its own share, never the worker: the others' deliveries
keep being claimed and sent meanwhile.

The running worker (`run`) is a pipeline: it claims while earlier deliveries are in flight (no
batch waits for its slowest request) and writes the results in bulk, RECORD_SECONDS after the
first of them came or as soon as RECORD_BATCH wait. `run_once` and the tests' steps go batch by
batch instead: claim, send, record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import signal
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, literal_column, or_, select, true, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cases.models import CaseAgency
from app.core.config import Settings
from app.core.idempotency import purge_expired
from app.core.types import UTCDateTime, utcnow
from app.stats.refresh import refresh_snapshots
from app.webhooks import signing
from app.webhooks.http import HttpError, Pool
from app.webhooks.models import Audience, DeliveryStatus, WebhookDelivery, WebhookSubscription
from app.webhooks.outbox import among, dispatch, purge_finished
from app.webhooks.overdue import mark_overdue
from app.webhooks.service import https_required, load_allowlist, signing_secrets
from app.webhooks.ssrf import Allowlist, Resolver, Target, UrlRefused, check_url, split_url

log = logging.getLogger("regiondesk.webhooks")

USER_AGENT = "RegionDesk-Webhooks/1"
MIN_RETRY_SECONDS = 1.0
ERROR_LENGTH = 500
HOLD_ROUNDS = 16  # deliveries of one subscription per claim: this many × webhook_host_concurrency
LEASE_MARGIN_SECONDS = 5.0  # an attempt starts only if it ends this long before the lease
MAX_HELD_BATCHES = 8  # the running worker holds at most this many batches' worth (memory)
RECORD_SECONDS = 0.2  # the running worker writes outcomes this long after the first came…
RECORD_BATCH = 500  # …or as soon as this many are waiting
# A literal, not a bound parameter: PostgreSQL's generic plans use the partial index
# ix_webhook_delivery_due_per_subscription (WHERE status = 'pending') only when the query names
# the value.
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


@dataclass(slots=True)  # not frozen: a frozen dataclass is slow to build, and claims build many
class Claimed:
    id: int
    token: str
    subscription_id: int
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
    expires: float = math.inf  # time.monotonic() when the lease ends, as this worker sees it


@dataclass(slots=True)
class Outcome:
    delivery: Claimed
    status_code: int | None
    error: str | None
    attempted: bool = True  # False: not sent, handed back (its lease would have run out)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _short(text: str) -> str:
    return text if len(text) <= ERROR_LENGTH else text[: ERROR_LENGTH - 1] + "…"


def make_pool(settings: Settings) -> Pool:
    return Pool(per_origin=settings.webhook_host_concurrency, user_agent=USER_AGENT)


@functools.lru_cache(maxsize=1024)
def receiver_of(url: str) -> str:
    """The origin a subscription's URL names (scheme://host:port): the unit of fairness."""
    try:
        scheme, host, port, _ = split_url(url)
    except UrlRefused:
        return url
    return f"{scheme}://{host.lower()}:{port}"


def _due(rows: Any, now: datetime) -> list[Any]:
    return [
        rows.c.status == PENDING,
        rows.c.next_attempt_at <= now,
        or_(rows.c.locked_until.is_(None), rows.c.locked_until < now),
    ]


def _due_ids(
    dialect: str, now: datetime, limit: int, per_subscription: int, exclude: Iterable[int]
):
    """The ids to claim: due, of active subscriptions not excluded, at most `per_subscription`
    of each, in priority order (missing persons' partners first), then by due time."""
    subs = WebhookSubscription.__table__
    due = WebhookDelivery.__table__.alias("due")
    wanted = [subs.c.is_active.is_(True)]
    if exclude := list(exclude):
        wanted.append(subs.c.id.not_in(exclude))
    if dialect == "postgresql":
        # Per subscription, a short range of ix_webhook_delivery_due_per_subscription, each
        # row locked or, when another worker is claiming it, passed by.
        each = (
            select(due.c.id, due.c.priority, due.c.next_attempt_at)
            .where(due.c.subscription_id == subs.c.id, *_due(due, now))
            .order_by(due.c.priority, due.c.next_attempt_at, due.c.id)
            .limit(per_subscription)
            .with_for_update(skip_locked=True)
            .lateral("picked")
        )
        order = (each.c.priority, each.c.next_attempt_at, each.c.id)
        return (
            select(each.c.id)
            .select_from(subs.join(each, true()))
            .where(*wanted)
            .order_by(*order)
            .limit(limit)
        )
    # SQLite: one writer at a time anyway (no row locks); a window function ranks each
    # subscription's due deliveries.
    rank = (
        func.row_number()
        .over(
            partition_by=due.c.subscription_id,
            order_by=(due.c.priority, due.c.next_attempt_at, due.c.id),
        )
        .label("rank")
    )
    ranked = (
        select(due.c.id, due.c.priority, due.c.next_attempt_at, rank)
        .join(subs, subs.c.id == due.c.subscription_id)
        .where(*_due(due, now), *wanted)
        .subquery()
    )
    return (
        select(ranked.c.id)
        .where(ranked.c.rank <= per_subscription)
        .order_by(ranked.c.priority, ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )


class Worker:
    """One worker process. Each step takes `now`, so tests drive time exactly."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        http: Pool | None = None,
        resolver: Resolver | None = None,
        rng: Callable[[], float] = random.random,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.http = http or make_pool(settings)
        self._own_http = http is None
        self.resolver = resolver
        self.rng = rng
        self.name = name or f"worker-{uuid.uuid4().hex[:8]}"
        self.per_subscription = HOLD_ROUNDS * settings.webhook_host_concurrency
        # Longer than a batch takes when every round of it times out (plus DNS), so a live
        # worker keeps its lease; a dead one's deliveries come back after it. A receiver that
        # times out again and again may not get through its whole share within the lease: the
        # rest is handed back unsent and claimed again.
        rounds = math.ceil(settings.webhook_batch_size / settings.webhook_concurrency)
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds * (rounds + 2) + 60)
        self._gate = asyncio.Semaphore(settings.webhook_concurrency)
        self._wake = asyncio.Event()
        self.stopping = False  # set by the running worker: what is not sent yet is handed back

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

    async def claim(
        self,
        now: datetime | None = None,
        *,
        limit: int | None = None,
        per_subscription: int | None = None,
        exclude: Iterable[int] = (),
    ) -> list[Claimed]:
        """Takes due deliveries under a lease (one batch, by default in plain priority order);
        the transaction is over on return."""
        limit = limit or self.settings.webhook_batch_size
        claimed, _ = await self._claim(now or utcnow(), limit, per_subscription or limit, exclude)
        return claimed

    async def _claim(
        self, now: datetime, limit: int, per_subscription: int, exclude: Iterable[int]
    ) -> tuple[list[Claimed], Allowlist]:
        """The claim, and the URL allowlist to check the claimed deliveries' URLs against:
        three statements in one transaction (lease the rows, their subscriptions, the list)."""
        d, s = WebhookDelivery.__table__.c, WebhookSubscription
        token = f"{self.name}:{uuid.uuid4().hex[:12]}"
        expires = time.monotonic() + self.lease.total_seconds()
        async with self.sessionmaker() as session:
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            picked = _due_ids(dialect, now, limit, per_subscription, exclude)
            rows = (
                await session.execute(
                    update(WebhookDelivery.__table__)
                    .where(d.id.in_(picked))
                    .values(locked_until=now + self.lease, locked_by=token)
                    .returning(
                        d.id,
                        d.subscription_id,
                        d.event_id,
                        d.event_type,
                        d.case_id,
                        d.payload,
                        d.attempts,
                        d.first_attempt_at,
                        d.priority,
                        d.next_attempt_at,
                    )
                )
            ).all()
            if not rows:
                await session.commit()
                return [], Allowlist()
            found = await session.execute(
                select(
                    s.id,
                    s.url,
                    s.secret,
                    s.previous_secret,
                    s.previous_secret_expires_at,
                    s.owner_role,
                    s.owner_agency_id,
                ).where(s.id.in_({r.subscription_id for r in rows}))
            )
            subs = {sub.id: sub for sub in found.all()}
            allowlist = await load_allowlist(session)
            await session.commit()
        claimed = []
        for r in sorted(rows, key=lambda r: (r.priority, r.next_attempt_at, r.id)):
            sub = subs[r.subscription_id]
            claimed.append(
                Claimed(
                    id=r.id,
                    token=token,
                    subscription_id=r.subscription_id,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    case_id=r.case_id,
                    payload=r.payload,
                    attempts=r.attempts,
                    first_attempt_at=r.first_attempt_at,
                    url=sub.url,
                    secrets=signing_secrets(
                        sub.secret, sub.previous_secret, sub.previous_secret_expires_at, now
                    ),
                    owner_role=sub.owner_role,
                    owner_agency_id=sub.owner_agency_id,
                    expires=expires,
                )
            )
        return claimed, allowlist

    async def deliver_once(self, now: datetime | None = None) -> int:
        """Claims a batch, sends it concurrently, records the outcomes; returns the count."""
        batch = self.settings.webhook_batch_size
        claimed, allowlist = await self._claim(now or utcnow(), batch, batch, ())
        if not claimed:
            return 0
        outcomes = await self.send(claimed, allowlist)
        await self.record(outcomes, now or utcnow())
        return len(claimed)

    async def send(
        self, claimed: list[Claimed], allowlist: Allowlist | None = None
    ) -> list[Outcome]:
        if allowlist is None:
            async with self.sessionmaker() as session:
                allowlist = await load_allowlist(session)
        targets = await self._targets({c.url for c in claimed}, allowlist)
        return list(await asyncio.gather(*(self._attempt(c, targets[c.url]) for c in claimed)))

    async def _targets(
        self, urls: set[str], allowlist: Allowlist
    ) -> dict[str, Target | UrlRefused]:
        """Each distinct URL checked once per claim (DNS included), concurrently."""

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
        """One attempt: a place at the receiver first, then one of the worker's (never the
        other way round, so deliveries waiting for a busy receiver hold none of the worker's)."""
        if isinstance(target, UrlRefused):
            return Outcome(delivery, None, _short(f"refused: {target}"))
        timeout = self.settings.webhook_timeout_seconds
        async with self.http.slot(target), self._gate:
            if (
                self.stopping
                or time.monotonic() + timeout + LEASE_MARGIN_SECONDS > delivery.expires
            ):
                return Outcome(delivery, None, None, attempted=False)
            body = delivery.payload.encode()
            headers = [
                ("Content-Type", "application/json"),
                (
                    signing.SIGNATURE_HEADER,
                    signing.signature_header(delivery.secrets, int(time.time()), body),
                ),
                (signing.EVENT_ID_HEADER, str(delivery.event_id)),
                (signing.EVENT_TYPE_HEADER, delivery.event_type),
                (signing.DELIVERY_ID_HEADER, str(delivery.id)),
            ]
            try:
                async with asyncio.timeout(timeout):
                    reply = await self.http.post(target, headers, body)
            except TimeoutError:
                return Outcome(delivery, None, f"timeout after {timeout:g} s")
            except HttpError as exc:
                return Outcome(delivery, None, _short(str(exc)))
        if reply.is_success:
            return Outcome(delivery, reply.status, None)
        detail = f"HTTP {reply.status}"
        if reply.is_redirect:
            detail += " (redirects are not followed)"
        snippet = reply.body[:200].decode(errors="replace").strip()
        return Outcome(delivery, reply.status, _short(f"{detail}: {snippet}".rstrip(": ")))

    async def record(self, outcomes: list[Outcome], now: datetime) -> None:
        """Writes every outcome in one transaction: the deliveries that got through in one
        UPDATE per claim (most of them, as a rule), the failed attempts, the deliveries handed
        back unsent and the agencies' receipt of their cases each in one bulk UPDATE."""
        delivered: dict[tuple[str, int | None], list[int]] = defaultdict(list)
        rows: list[dict[str, Any]] = []
        released: list[dict[str, Any]] = []
        receipts: list[dict[str, Any]] = []
        for outcome in outcomes:
            d = outcome.delivery
            if not outcome.attempted:
                released.append({"b_id": d.id, "b_token": d.token})
            elif outcome.ok:
                delivered[(d.token, outcome.status_code)].append(d.id)
                if d.case_id is not None and d.owner_role == Audience.agency:
                    receipts.append(
                        {"b_case": d.case_id, "b_agency": d.owner_agency_id, "b_at": now}
                    )
            else:
                first = d.first_attempt_at or now
                attempts = d.attempts + 1
                retry = retry_at(attempts, first, now, self.settings, self.rng)
                status = DeliveryStatus.pending if retry else DeliveryStatus.failed
                rows.append(
                    {
                        "b_id": d.id,
                        "b_token": d.token,
                        "b_status": status.value,
                        "b_attempts": attempts,
                        "b_next": retry or now,
                        "b_first": first,
                        "b_last": now,
                        "b_code": outcome.status_code,
                        "b_error": outcome.error,
                    }
                )
        table = WebhookDelivery.__table__
        c = table.c
        mine = and_(c.id == bindparam("b_id"), c.locked_by == bindparam("b_token"))
        unlocked = {"locked_until": None, "locked_by": None}
        async with self.sessionmaker() as session:
            at = literal(now, UTCDateTime())
            for (token, code), ids in delivered.items():
                await session.execute(
                    update(table)
                    .where(among(session, c.id, ids), c.locked_by == token)
                    .values(
                        status=DeliveryStatus.delivered.value,
                        attempts=c.attempts + 1,
                        next_attempt_at=at,
                        first_attempt_at=func.coalesce(c.first_attempt_at, at),
                        last_attempt_at=at,
                        delivered_at=at,
                        last_status_code=code,
                        last_error=None,
                        **unlocked,
                    )
                )
            if rows:
                await session.execute(
                    update(table)
                    .where(mine)
                    .values(
                        status=bindparam("b_status"),
                        attempts=bindparam("b_attempts"),
                        next_attempt_at=bindparam("b_next"),
                        first_attempt_at=bindparam("b_first"),
                        last_attempt_at=bindparam("b_last"),
                        delivered_at=None,
                        last_status_code=bindparam("b_code"),
                        last_error=bindparam("b_error"),
                        **unlocked,
                    ),
                    rows,
                )
            if released:
                await session.execute(update(table).where(mine).values(**unlocked), released)
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
        """Until `stop` is set; requests in flight are finished and recorded, never abandoned."""
        settings = self.settings
        batch, poll = settings.webhook_batch_size, settings.webhook_poll_seconds
        await asyncio.gather(
            self._loop(self.dispatch_once, stop, batch, poll),
            Sender(self).run(stop),
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
                await _wait(_backoff(idle_seconds, failures), stop)


@dataclass(slots=True)
class _Lane:
    waiting: deque[tuple[Claimed, Target | UrlRefused]] = field(default_factory=deque)
    senders: int = 0


class Sender:
    """The running worker's deliveries: claims while earlier ones are in flight, a share per
    receiver (see the module's docstring), outcomes written in bulk as they come."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.share = worker.per_subscription
        self.most = MAX_HELD_BATCHES * worker.settings.webhook_batch_size
        self.held: Counter[str] = Counter()  # claimed and not finished, by receiver
        self.total = 0
        self.receiver: dict[int, str] = {}  # subscription -> receiver, as last claimed
        self.lanes: dict[str, _Lane] = {}  # by receiver: the deliveries waiting to be sent
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: list[Outcome] = []
        self.progress = asyncio.Event()  # a receiver is hungry again, or the worker has room
        self.flush = asyncio.Event()  # the first outcome waits, or RECORD_BATCH do
        self.closing = False

    def hungry(self, receiver: str) -> bool:
        """Claimed for: half of its share or less waits in the worker."""
        return self.held[receiver] <= self.share // 2

    async def run(self, stop: asyncio.Event) -> None:
        self.worker.stopping = False
        recorder = asyncio.create_task(self._recorder())
        try:
            await self._claimer(stop)
        finally:
            # The requests in flight are finished, the deliveries waiting their turn handed
            # back (a slow receiver's share could take minutes), and all of it recorded.
            self.worker.stopping = True
            while self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
            self.closing = True
            self.flush.set()
            await recorder

    async def _claimer(self, stop: asyncio.Event) -> None:
        worker, settings = self.worker, self.worker.settings
        batch, poll = settings.webhook_batch_size, settings.webhook_poll_seconds
        failures = 0
        while not stop.is_set():
            worker.http.sweep()
            if self.total >= self.most:
                await _wait(None, stop, self.progress)
                continue
            limit = min(batch, self.most - self.total)
            sated = sorted(s for s, r in self.receiver.items() if not self.hungry(r))
            try:
                claimed, allowlist = await worker._claim(utcnow(), limit, self.share, sated)
                targets = await worker._targets({c.url for c in claimed}, allowlist)
                failures = 0
            except Exception:  # the database is down: log, back off, go on
                failures += 1
                log.exception("webhook worker claim failed")
                await _wait(_backoff(poll, failures), stop)
                continue
            for delivery in claimed:
                self._start(delivery, targets[delivery.url])
            if len(claimed) < limit:  # all that is due for the hungry receivers is on its way
                await _wait(poll, stop, worker._wake, self.progress)

    def _start(self, delivery: Claimed, target: Target | UrlRefused) -> None:
        receiver = receiver_of(delivery.url)
        self.receiver[delivery.subscription_id] = receiver
        self.held[receiver] += 1
        self.total += 1
        lane = self.lanes.get(receiver)
        if lane is None:
            lane = self.lanes[receiver] = _Lane()
        lane.waiting.append((delivery, target))
        if lane.senders < self.worker.settings.webhook_host_concurrency:
            lane.senders += 1
            task = asyncio.create_task(self._send(receiver, lane))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send(self, receiver: str, lane: _Lane) -> None:
        """One of a receiver's senders (webhook_host_concurrency at most): its deliveries one
        after another, until none waits. (A task per delivery, each waiting for a place, cost
        a third more CPU per request.)"""
        try:
            while lane.waiting:
                delivery, target = lane.waiting.popleft()
                try:
                    outcome = await self.worker._attempt(delivery, target)
                except Exception as exc:  # a bug, not the receiver: an outcome all the same
                    log.exception("webhook delivery %s failed unexpectedly", delivery.id)
                    outcome = Outcome(delivery, None, _short(f"{type(exc).__name__}: {exc}"))
                self._done(outcome, receiver)
        finally:
            lane.senders -= 1

    def _done(self, outcome: Outcome, receiver: str) -> None:
        self.outcomes.append(outcome)
        if len(self.outcomes) in (1, RECORD_BATCH):
            self.flush.set()
        self.held[receiver] -= 1
        self.total -= 1
        if self.held[receiver] == self.share // 2 or self.total == self.most - 1:
            self.progress.set()
        if not self.held[receiver]:
            del self.held[receiver]

    async def _recorder(self) -> None:
        """Writes the outcomes RECORD_SECONDS after the first of them came (sooner when
        RECORD_BATCH wait). When the database is down they are kept and tried again; at
        shutdown a few times, then given up: their leases run out and they are sent again."""
        worker, failures = self.worker, 0
        while True:
            if not self.outcomes and not self.closing:
                await _wait(None, None, self.flush)  # the first outcome, or closing
            if len(self.outcomes) < RECORD_BATCH and not self.closing:
                await _wait(RECORD_SECONDS, None, self.flush)
            if not self.outcomes:
                if self.closing:
                    return
                continue
            outcomes, self.outcomes = self.outcomes, []
            try:
                await worker.record(outcomes, utcnow())
                failures = 0
            except Exception:
                failures += 1
                log.exception("webhook worker could not record %d outcomes", len(outcomes))
                if self.closing and failures >= 3:
                    return
                self.outcomes[:0] = outcomes
                await asyncio.sleep(_backoff(worker.settings.webhook_poll_seconds, failures))


def _backoff(seconds: float, failures: int) -> float:
    return seconds * min(2**failures, 30) if failures else seconds


async def _wait(seconds: float | None, stop: asyncio.Event | None, *events: asyncio.Event) -> None:
    """Sleeps until the time is up, the worker is stopped, or one of the events is set (new
    work, room for more); clears the events."""
    waiters = [asyncio.ensure_future(e.wait()) for e in (stop, *events) if e is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for event in events:
            event.clear()


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
