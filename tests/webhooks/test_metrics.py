"""/metrics shows the outbox backlog and the deliveries waiting and failed."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from app.webhooks.models import WebhookDelivery
from tests.cases.conftest import incident
from tests.webhooks.conftest import subscribe

pytestmark = pytest.mark.usefixtures("local_allowed")


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name.startswith("regiondesk_webhook")
    }


def deliveries_in(found, state: str) -> float:
    return found[("regiondesk_webhook_deliveries", (("state", state),))]


def test_backlog_pending_and_failed_deliveries_are_exported(client, admin, auth, worker, db):
    client.app.state.metrics.cache_seconds = 0  # every scrape reads the database
    subscribe(client, admin, "http://127.0.0.1:9/hook")  # nothing listens there
    client.post("/api/v1/incidents", json=incident(), headers=auth.headers("operator"))

    found = scrape(client)
    assert found[("regiondesk_webhook_outbox_backlog", ())] == 1
    assert deliveries_in(found, "pending") == 0

    worker.dispatch_once()
    found = scrape(client)
    assert found[("regiondesk_webhook_outbox_backlog", ())] == 0
    assert deliveries_in(found, "pending") == 1 and deliveries_in(found, "due") == 1
    assert found[("regiondesk_webhook_oldest_pending_seconds", ())] >= 0

    db.run(lambda s: s.execute(update(WebhookDelivery).values(status="failed")))
    found = scrape(client)
    assert deliveries_in(found, "failed") == 1 and deliveries_in(found, "pending") == 0
    assert found[("regiondesk_webhook_oldest_pending_seconds", ())] == 0
