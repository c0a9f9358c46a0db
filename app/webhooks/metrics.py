"""Webhook figures for GET /metrics: the outbox backlog and the deliveries waiting or failed.

Each is one cheap aggregate over a partial index (undispatched events, pending deliveries,
failed deliveries), so a scrape stays fast however many deliveries were made."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import case, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.types import utcnow
from app.observability.metrics import register_collector
from app.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEvent


@register_collector
async def webhook_metrics(session: AsyncSession) -> list[Metric]:
    now = utcnow()
    backlog = await session.execute(
        select(func.count()).where(WebhookEvent.dispatched_at.is_(None))
    )
    undispatched = backlog.scalar_one()
    is_due = case((WebhookDelivery.next_attempt_at <= now, 1), else_=0)
    pending = await session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(is_due), 0),
            func.min(WebhookDelivery.created_at),
        ).where(WebhookDelivery.status == DeliveryStatus.pending)
    )
    waiting, due, oldest = pending.one()
    failed = await session.execute(
        select(func.count()).where(WebhookDelivery.status == DeliveryStatus.failed)
    )

    outbox = GaugeMetricFamily(
        "regiondesk_webhook_outbox_backlog",
        "Case events in the outbox not yet fanned out to deliveries",
        value=undispatched,
    )
    deliveries = GaugeMetricFamily(
        "regiondesk_webhook_deliveries",
        "Webhook deliveries by state: pending (waiting or retrying), due (pending and due now), "
        "failed (gave up after the retry window; redeliverable)",
        labels=["state"],
    )
    deliveries.add_metric(["pending"], waiting)
    deliveries.add_metric(["due"], int(due))
    deliveries.add_metric(["failed"], failed.scalar_one())
    age = GaugeMetricFamily(
        "regiondesk_webhook_oldest_pending_seconds",
        "Age of the oldest pending delivery (0 when none): how far behind receivers are",
        value=(now - oldest).total_seconds() if oldest is not None else 0,
    )
    return [outbox, deliveries, age]
