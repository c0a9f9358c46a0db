"""Delivery to a real HTTP receiver on 127.0.0.1: signed bodies, retries with backoff after 5xx
and timeouts, giving up after the retry window, redelivery, and who receives what."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.types import utcnow
from app.webhooks import signing
from app.webhooks.delivery import retry_at
from app.webhooks.models import CaseOverdue
from app.webhooks.service import partner_deliveries
from tests.cases.conftest import appeal, incident, rule
from tests.webhooks.conftest import deliveries, outbox, subscribe

pytestmark = pytest.mark.usefixtures("local_allowed")

SECRET = "receiver-shared-secret-0123456789"


@pytest.fixture
def operator(auth):
    return auth.headers("operator")


def new_incident(client, headers, **kw) -> dict:
    response = client.post("/api/v1/incidents", json=incident(**kw), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_case_event_reaches_the_receiver_signed(client, admin, operator, worker, receiver, db):
    sub = subscribe(client, admin, receiver.url, secret=SECRET)["subscription"]
    case = new_incident(client, operator)

    done = worker.run_once()
    assert done["dispatched"] == 1 and done["delivered"] == 1
    [got] = receiver.received
    assert got.path == "/hook"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["User-Agent"].startswith("RegionDesk-Webhooks/")
    assert signing.verify(SECRET, got.headers[signing.SIGNATURE_HEADER], got.body, int(time.time()))
    assert not signing.verify("another-secret", got.headers[signing.SIGNATURE_HEADER], got.body, 0)
    body = got.json
    assert set(body) == {"id", "type", "occurred_at", "case_event_id", "change", "case"}
    assert body["type"] == "case.created" and body["occurred_at"].endswith("Z")
    assert got.headers[signing.EVENT_ID_HEADER] == str(body["id"])
    assert got.headers[signing.EVENT_TYPE_HEADER] == "case.created"
    assert body["case"]["id"] == case["id"] and body["case"]["number"] == case["number"]
    assert body["case"]["author_handle"] == "ivan_petrov"  # admins may read personal data
    assert "allowed_actions" not in body["case"]
    assert body["change"]["to_status"] == "new"

    [delivery] = deliveries(db)
    assert delivery.status == "delivered" and delivery.attempts == 1
    assert delivery.last_status_code == 200 and delivery.delivered_at is not None
    listed = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin).json()
    assert [(d["status"], d["event_type"]) for d in listed["items"]] == [
        ("delivered", "case.created")
    ]


def test_retries_after_server_errors_with_backoff(client, admin, operator, worker, receiver, db):
    subscribe(client, admin, receiver.url, secret=SECRET)
    new_incident(client, operator)
    receiver.reply(500, 503)
    t0 = utcnow()

    worker.run_once(t0)
    [d] = deliveries(db)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 500)
    assert d.last_error.startswith("HTTP 500") and "receiver says no" in d.last_error
    assert d.next_attempt_at == t0 + timedelta(seconds=5)  # full jitter: 0.5 × 10 s
    assert d.first_attempt_at == t0

    assert worker.run_once(t0 + timedelta(seconds=4))["delivered"] == 0  # not due yet
    worker.run_once(t0 + timedelta(seconds=6))
    [d] = deliveries(db)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 2, 503)
    assert d.next_attempt_at == t0 + timedelta(seconds=6 + 10)  # 0.5 × 20 s

    worker.run_once(t0 + timedelta(seconds=16))
    [d] = deliveries(db)
    assert (d.status, d.attempts, d.last_status_code, d.last_error) == ("delivered", 3, 200, None)
    ids = {r.json["id"] for r in receiver.received}
    assert len(receiver.received) == 3 and len(ids) == 1  # the same event: receivers dedupe


def test_timeouts_are_retried(client, admin, operator, make_worker, receiver, db):
    worker = make_worker(webhook_timeout_seconds=0.3)
    subscribe(client, admin, receiver.url, secret=SECRET)
    new_incident(client, operator)
    receiver.reply(("sleep", 1.5))
    t0 = utcnow()

    worker.run_once(t0)
    [d] = deliveries(db)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, None)
    assert d.last_error == "timeout after 0.3 s"
    worker.run_once(t0 + timedelta(seconds=10))
    assert deliveries(db)[0].status == "delivered"


def test_connection_errors_are_retried(client, admin, operator, worker, db):
    subscribe(client, admin, "http://127.0.0.1:9/closed", secret=SECRET)  # nobody listens
    new_incident(client, operator)
    worker.run_once()
    [d] = deliveries(db)
    assert d.status == "pending" and d.attempts == 1 and d.last_error.startswith("ConnectError")


def test_gives_up_after_the_retry_window_and_can_be_redelivered(
    client, admin, operator, worker, receiver, db
):
    sub = subscribe(client, admin, receiver.url, secret=SECRET)["subscription"]
    new_incident(client, operator)
    receiver.reply(500, 500, 500)
    t0 = utcnow()

    worker.run_once(t0)
    worker.run_once(t0 + timedelta(hours=71))
    [d] = deliveries(db)
    assert d.status == "pending" and d.next_attempt_at == t0 + timedelta(hours=71, seconds=10)
    worker.run_once(t0 + timedelta(hours=72, seconds=1))
    [d] = deliveries(db)
    assert (d.status, d.attempts) == ("failed", 3)

    failed = client.get(
        f"/api/v1/webhooks/{sub['id']}/deliveries", params={"status": "failed"}, headers=admin
    ).json()["items"]
    assert [x["id"] for x in failed] == [d.id] and failed[0]["last_status_code"] == 500
    assert worker.run_once(t0 + timedelta(hours=100))["delivered"] == 0  # failed stays failed

    response = client.post(
        f"/api/v1/webhooks/{sub['id']}/deliveries/{d.id}/redeliver", headers=admin
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    worker.run_once()
    [d] = deliveries(db)
    assert (d.status, d.attempts) == ("delivered", 4)
    assert len(receiver.received) == 4


def test_redelivering_a_delivered_event_sends_it_again(client, admin, operator, worker, receiver):
    sub = subscribe(client, admin, receiver.url, secret=SECRET)["subscription"]
    new_incident(client, operator)
    worker.run_once()
    listed = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries", headers=admin).json()
    delivery_id = listed["items"][0]["id"]
    client.post(f"/api/v1/webhooks/{sub['id']}/deliveries/{delivery_id}/redeliver", headers=admin)
    worker.run_once()
    assert [r.json["id"] for r in receiver.received] == [receiver.received[0].json["id"]] * 2


def test_retry_schedule_is_exponential_with_full_jitter_and_a_cap(settings):
    t0 = utcnow()
    at = [retry_at(n, t0, t0, settings, lambda: 1.0) - t0 for n in range(1, 12)]
    assert [int(x.total_seconds()) for x in at] == [
        10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600
    ]  # fmt: skip
    assert retry_at(3, t0, t0, settings, lambda: 0.25) - t0 == timedelta(seconds=10)
    assert retry_at(3, t0, t0, settings, lambda: 0.0) - t0 == timedelta(seconds=1)  # a floor
    end = t0 + timedelta(hours=72)
    assert retry_at(40, t0, end - timedelta(seconds=5), settings, lambda: 1.0) == end
    assert retry_at(40, t0, end, settings, lambda: 1.0) is None


def test_redirects_are_not_followed(client, admin, operator, worker, receiver, db):
    subscribe(client, admin, receiver.url, secret=SECRET)
    new_incident(client, operator)
    receiver.reply(("redirect", "http://169.254.169.254/latest/meta-data/"))
    worker.run_once()
    [d] = deliveries(db)
    assert d.status == "pending" and d.last_status_code == 302
    assert "redirects are not followed" in d.last_error
    assert len(receiver.received) == 1


def test_delivery_connects_to_the_checked_address_with_the_right_host(
    client, admin, operator, worker, receiver, db, dns
):
    dns.names["events.ministry.test"] = ["127.0.0.1"]
    client.post("/api/v1/webhooks/allowlist", json={"entry": "events.ministry.test"}, headers=admin)
    subscribe(client, admin, f"http://events.ministry.test:{receiver.port}/in", secret=SECRET)
    new_incident(client, operator)
    worker.run_once()
    [got] = receiver.received
    assert got.headers["Host"] == f"events.ministry.test:{receiver.port}"
    assert got.path == "/in"


def test_a_name_rebound_to_an_internal_address_is_refused_at_delivery(
    client, admin, operator, worker, receiver, db, dns
):
    subscribe(client, admin, "https://hooks.example.org/in", secret=SECRET)  # public on save
    dns.names["hooks.example.org"] = ["10.0.0.9"]  # …internal at delivery
    new_incident(client, operator)
    worker.run_once()
    [d] = deliveries(db)
    assert d.status == "pending" and d.last_status_code is None
    assert d.last_error.startswith("refused: the host hooks.example.org resolves to 10.0.0.9")
    assert receiver.received == []


def test_ping_sends_a_test_event(client, admin, worker, receiver):
    sub = subscribe(client, admin, receiver.url, secret=SECRET)["subscription"]
    response = client.post(f"/api/v1/webhooks/{sub['id']}/ping", headers=admin)
    assert response.status_code == 202 and response.json()["status"] == "pending"
    worker.run_once()
    [got] = receiver.received
    assert got.json["type"] == "ping" and got.json["case"] is None
    assert signing.verify(SECRET, got.headers[signing.SIGNATURE_HEADER], got.body, int(time.time()))


def test_after_rotation_both_secrets_sign_for_the_grace_period(client, admin, worker, receiver):
    sub = subscribe(client, admin, receiver.url, secret=SECRET)["subscription"]
    new = client.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", headers=admin).json()
    client.post(f"/api/v1/webhooks/{sub['id']}/ping", headers=admin)
    worker.run_once()
    [got] = receiver.received
    header = got.headers[signing.SIGNATURE_HEADER]
    assert header.count("v1=") == 2
    now = int(time.time())
    assert signing.verify(new["secret"], header, got.body, now)
    assert signing.verify(SECRET, header, got.body, now)


def test_a_paused_subscription_keeps_its_deliveries_waiting(
    client, admin, operator, worker, receiver, db
):
    sub = subscribe(client, admin, receiver.url, secret=SECRET)["subscription"]
    new_incident(client, operator)
    worker.run_once()  # fan-out and delivery of the first event
    client.patch(f"/api/v1/webhooks/{sub['id']}", json={"is_active": False}, headers=admin)
    new_incident(client, operator)
    worker.run_once()
    assert len(receiver.received) == 1
    client.patch(f"/api/v1/webhooks/{sub['id']}", json={"is_active": True}, headers=admin)
    worker.run_once()
    assert len(receiver.received) == 2


def test_events_before_the_subscription_existed_are_not_sent(
    client, admin, operator, worker, receiver
):
    new_incident(client, operator)
    subscribe(client, admin, receiver.url, secret=SECRET)
    new_incident(client, operator)
    worker.run_once()
    assert len(receiver.received) == 1


# --- who receives what -----------------------------------------------------------------------


def bodies_by_path(receiver) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for r in receiver.received:
        out.setdefault(r.path, []).append((r.json["type"], r.json["case"]["id"]))
    return out


def test_each_subscriber_gets_only_the_cases_it_could_read(client, auth, world, worker, receiver):
    operator = auth.headers("operator")
    krasnodar = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    monitoring = auth.headers("integration", source="monitoring")
    subscribe(client, krasnodar, receiver.url + "/krasnodar", event_types=["case.created"])
    subscribe(client, monitoring, receiver.url + "/monitoring", event_types=["case.created"])

    ours = new_incident(client, monitoring)
    theirs = new_incident(client, operator)
    for case, agency in ((ours, world.adm_sochi), (theirs, world.adm_krasnodar)):
        assign = client.post(
            f"/api/v1/cases/{case['id']}/assign", json={"agency_id": agency.id}, headers=operator
        )
        assert assign.status_code == 200
    worker.run_once()
    assert bodies_by_path(receiver) == {
        "/hook/krasnodar": [("case.created", theirs["id"])],
        "/hook/monitoring": [("case.created", ours["id"])],
    }


def test_personal_data_only_where_the_owner_reads_it_and_wants_it(
    client, admin, operator, worker, receiver
):
    subscribe(client, admin, receiver.url + "/full", event_types=["case.created"])
    subscribe(
        client,
        admin,
        receiver.url + "/minimal",
        event_types=["case.created"],
        include_personal_data=False,
    )
    client.post("/api/v1/appeals", json=appeal(), headers=operator)
    worker.run_once()
    cases = {r.path: r.json["case"] for r in receiver.received}
    assert cases["/hook/full"]["applicant_name"] == "Иванова Мария Петровна"
    assert cases["/hook/full"]["personal_data_hidden"] is False
    minimal = cases["/hook/minimal"]
    assert minimal["personal_data_hidden"] is True
    assert all(
        minimal[f] is None
        for f in ("applicant_name", "applicant_email", "applicant_phone", "author_handle")
    )
    assert minimal["text"] == cases["/hook/full"]["text"]


def test_filters_by_kind_category_sector_and_agency(
    client, admin, operator, world, worker, receiver
):
    subscribe(client, admin, receiver.url + "/appeals", kinds=["appeal"])
    subscribe(client, admin, receiver.url + "/roads", category_ids=[world.roads.id])
    subscribe(client, admin, receiver.url + "/sochi", agency_ids=[world.adm_sochi.id])
    pothole = new_incident(client, operator, category_id=world.potholes.id)
    health = new_incident(client, operator, category_id=world.health.id)
    letter = client.post("/api/v1/appeals", json=appeal(), headers=operator).json()
    client.post(
        f"/api/v1/cases/{health['id']}/assign",
        json={"agency_id": world.adm_sochi.id},
        headers=operator,
    )
    worker.run_once()
    got = bodies_by_path(receiver)
    assert got["/hook/appeals"] == [("case.created", letter["id"])]
    assert got["/hook/roads"] == [("case.created", pothole["id"])]  # a subcategory of the sector
    assert sorted(got["/hook/sochi"]) == [  # sent concurrently: in no particular order
        ("case.assigned", health["id"]),
        ("case.created", health["id"]),
    ]


def test_missing_persons_reach_the_partner_first_and_the_case_shows_it(
    client, auth, db, world, make_worker, receiver
):
    admin = auth.headers("admin")
    operator = auth.headers("operator")
    rule(
        db,
        name="missing persons",
        position=1,
        missing_person=True,
        notify_agency_ids=[world.lizaalert.id],
        agency_id=world.adm_krasnodar.id,
        stop=True,
    )
    subscribe(client, admin, receiver.url + "/everything")
    subscribe(
        client,
        admin,
        receiver.url + "/lizaalert",
        owner_agency_id=world.lizaalert.id,
        event_types=["case.created"],
    )
    ordinary = [new_incident(client, operator) for _ in range(3)]
    missing = new_incident(client, operator, missing_person=True, text="Пропал человек")

    def receipts():
        return db.run(lambda s: partner_deliveries(s, [missing["id"], ordinary[0]["id"]]))

    before = receipts()
    assert [(p.agency_id, p.delivered_at) for p in before[missing["id"]]] == [
        (world.lizaalert.id, None)
    ]
    assert before[ordinary[0]["id"]] == []

    one_at_a_time = make_worker(webhook_batch_size=1)
    while one_at_a_time.dispatch_once():
        pass
    cases_by_priority: dict[int, set[int]] = {}
    for d in deliveries(db):
        cases_by_priority.setdefault(d.priority, set()).add(d.case_id)
    assert cases_by_priority == {
        0: {missing["id"]},  # to the partner
        1: {missing["id"]},  # to everyone else
        5: {c["id"] for c in ordinary},
    }

    one_at_a_time.deliver_once()
    [first] = receiver.received
    assert first.path == "/hook/lizaalert" and first.json["case"]["id"] == missing["id"]
    after = receipts()
    assert after[missing["id"]][0].delivered_at is not None
    assert after[missing["id"]][0].agency_name == world.lizaalert.name
    # ... and so does the case itself, for the operator watching it
    shown = client.get(f"/api/v1/cases/{missing['id']}", headers=operator).json()
    [partner] = shown["partner_deliveries"]
    assert partner["agency_id"] == world.lizaalert.id and partner["delivered_at"] is not None
    listed = client.get("/api/v1/cases", headers=operator).json()["items"]
    assert all(item["partner_deliveries"] is None for item in listed)


def test_overdue_cases_are_announced_once_per_deadline(
    client, auth, admin, operator, world, worker, receiver, db
):
    subscribe(client, admin, receiver.url, event_types=["case.overdue"])
    case = new_incident(client, operator)
    assigned = client.post(
        f"/api/v1/cases/{case['id']}/assign",
        json={"agency_id": world.adm_krasnodar.id},
        headers=operator,
    ).json()
    due = assigned["due_at"]
    assert due is not None
    after_due = utcnow() + timedelta(days=60)

    assert worker.run_once(after_due)["overdue"] == 1
    assert worker.run_once(after_due + timedelta(hours=1))["overdue"] == 0
    [got] = receiver.received
    assert got.json["type"] == "case.overdue" and got.json["case"]["id"] == case["id"]
    assert got.json["case"]["overdue"] is True
    events = client.get(f"/api/v1/cases/{case['id']}/events", headers=operator).json()
    overdue = [e for e in events if e["action"] == "overdue"]
    assert len(overdue) == 1 and overdue[0]["actor"] == "system:deadlines"
    assert datetime.fromisoformat(overdue[0]["data"]["due_at"]) == datetime.fromisoformat(due)

    # A new deadline (an interim answer moves it) is a new deadline to miss.
    staff = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    client.post(f"/api/v1/cases/{case['id']}/accept", headers=staff)
    client.post(
        f"/api/v1/cases/{case['id']}/interim-answer",
        json={"text": "Работы запланированы", "planned_date": "2026-12-15"},
        headers=staff,
    )
    assert worker.run_once(after_due + timedelta(days=60))["overdue"] == 1
    assert len(db.run(lambda s: _all(s, CaseOverdue))) == 2


async def _all(session, model) -> list:
    return list((await session.execute(select(model))).scalars().all())


def test_the_overdue_job_sends_its_rows_as_parameters(client, operator, world, db):
    """Its batches differ in size from run to run; its statements do not. The rows go as the
    parameters of a statement compiled for one row (and kept in SQLAlchemy's cache where it can
    be: the case events), not as VALUES of a statement built and compiled anew for each batch
    (160 ms of the worker's loop for 500 overdue cases)."""
    from sqlalchemy import event
    from sqlalchemy.engine.interfaces import CacheStats

    from app.webhooks.overdue import mark_overdue

    for _ in range(5):
        case = new_incident(client, operator)
        assigned = client.post(
            f"/api/v1/cases/{case['id']}/assign",
            json={"agency_id": world.adm_krasnodar.id},
            headers=operator,
        )
        assert assigned.status_code == 200, assigned.text
    later = utcnow() + timedelta(days=400)
    engine = client.app.state.engine.sync_engine
    inserts: dict[str, tuple[bool, object]] = {}

    def seen(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            table = statement.split("(")[0].split()[-1]
            inserts[table] = (executemany, context.cache_hit)

    event.listen(engine, "after_cursor_execute", seen)
    try:
        assert db.run(lambda s: mark_overdue(s, now=later, batch=2)) == 2
        inserts.clear()  # the first run compiled (or found in the cache) what it could
        assert db.run(lambda s: mark_overdue(s, now=later, batch=3)) == 3
    finally:
        event.remove(engine, "after_cursor_execute", seen)
    assert set(inserts) == {"case_overdue", "case_event"}, inserts
    assert all(many for many, _ in inserts.values()), inserts
    assert inserts["case_event"][1] is CacheStats.CACHE_HIT, inserts


def test_closed_cases_are_never_overdue(client, auth, operator, world, worker):
    staff = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    case = new_incident(client, operator)
    url = f"/api/v1/cases/{case['id']}"
    client.post(f"{url}/assign", json={"agency_id": world.adm_krasnodar.id}, headers=operator)
    closed = client.post(
        f"{url}/close",
        json={"answer": "Сделано", "resolution": "solved", "responsible_official": "Петров"},
        headers=staff,
    )
    assert closed.status_code == 200, closed.text
    assert worker.run_once(utcnow() + timedelta(days=400))["overdue"] == 0


def test_fan_out_visibility_mirrors_the_api(db, world):
    """Subscriber.can_see (in memory, for the fan-out) answers as access.visible (SQL) does."""
    from app.cases import access
    from app.cases.models import Case, CaseAgency
    from app.webhooks.models import WebhookSubscription
    from app.webhooks.outbox import Subscriber

    cases = [
        db.add(Case(kind="incident", status="new", source_system=s, submitted_by="x", text="t"))
        for s in ("monitoring", "platform", "monitoring")
    ]
    db.add(CaseAgency.given(cases[0], world.adm_krasnodar.id))
    db.add(CaseAgency.given(cases[1], world.adm_sochi.id))
    db.add(CaseAgency.given(cases[1], world.adm_krasnodar.id))
    grants = {
        cases[0].id: {world.adm_krasnodar.id},
        cases[1].id: {world.adm_sochi.id, world.adm_krasnodar.id},
        cases[2].id: set(),
    }
    owners = [
        ("admin", None, None),
        ("agency", world.adm_krasnodar.id, None),
        ("agency", world.adm_sochi.id, None),
        ("agency", world.lizaalert.id, None),
        ("integration", None, "monitoring"),
        ("integration", None, "platform"),
        ("integration", None, "elsewhere"),
    ]
    for role, agency_id, system in owners:
        sub = Subscriber.of(
            WebhookSubscription(
                id=1,
                url="https://x.org",
                secret="s",
                event_types=[],
                owner_role=role,
                owner_agency_id=agency_id,
                owner_source_system=system,
                created_by="t",
            ),
            None,
        )

        async def visible_ids(session, principal=sub.principal):
            rows = await session.execute(select(Case.id).where(access.visible(principal)))
            return set(rows.scalars())

        by_api = db.run(visible_ids)
        by_fan_out = {c.id for c in cases if sub.can_see(c, grants[c.id])}
        assert by_fan_out == by_api, (role, agency_id, system)
        assert sub.sees_personal_data()


def test_deliveries_are_listed_newest_first_in_pages_with_details(client, auth, admin, world):
    first = subscribe(client, admin, "https://hooks.example.org/a")["subscription"]["id"]
    second = subscribe(client, admin, "https://hooks.example.org/b")["subscription"]["id"]
    made = [client.post(f"/api/v1/webhooks/{first}/ping", headers=admin).json() for _ in range(3)]
    other = client.post(f"/api/v1/webhooks/{second}/ping", headers=admin).json()
    url = f"/api/v1/webhooks/{first}/deliveries"

    page = client.get(url, params={"limit": 2}, headers=admin).json()
    assert [d["id"] for d in page["items"]] == [made[2]["id"], made[1]["id"]]
    rest = client.get(url, params={"limit": 2, "cursor": page["next_cursor"]}, headers=admin)
    assert [d["id"] for d in rest.json()["items"]] == [made[0]["id"]]
    assert rest.json()["next_cursor"] is None
    assert client.get(url, params={"status": "delivered"}, headers=admin).json()["items"] == []
    assert client.get(url, params={"cursor": "abc"}, headers=admin).status_code == 422

    detail = client.get(f"{url}/{made[0]['id']}", headers=admin).json()
    assert detail["payload"]["type"] == "ping" and detail["payload"]["id"] == detail["event_id"]
    assert client.get(f"{url}/{other['id']}", headers=admin).status_code == 404
    assert client.post(f"{url}/{other['id']}/redeliver", headers=admin).status_code == 404

    staff = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    assert client.get(url, headers=staff).status_code == 404
    assert client.get(f"{url}/{made[0]['id']}", headers=staff).status_code == 404
    assert client.post(f"/api/v1/webhooks/{first}/ping", headers=staff).status_code == 404


def test_finished_deliveries_are_deleted_after_the_retention_period(
    client, admin, operator, worker, receiver, db
):
    sub = subscribe(client, admin, receiver.url, event_types=["case.created"])["subscription"]
    t0 = utcnow()
    new_incident(client, operator)
    worker.run_once(t0)  # delivered
    receiver.reply(500, 500)
    new_incident(client, operator)
    worker.run_once(t0)
    worker.run_once(t0 + timedelta(hours=73))  # failed
    client.patch(f"/api/v1/webhooks/{sub['id']}", json={"is_active": False}, headers=admin)
    new_incident(client, operator)
    worker.run_once(t0)  # waits for the subscription to be resumed
    assert [d.status for d in deliveries(db)] == ["delivered", "failed", "pending"]

    worker.periodic_once(t0 + timedelta(days=29))
    assert len(deliveries(db)) == 3
    worker.periodic_once(t0 + timedelta(days=31))
    assert [d.status for d in deliveries(db)] == ["pending"]
    assert len(outbox(db)) == 1
