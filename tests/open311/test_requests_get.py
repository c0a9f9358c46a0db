"""GET requests: the spec's fields and formats, the default window, filters, who sees what,
and never any personal data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy import update

from app.cases.models import Case
from app.deadlines.calendar import DeadlineUnit, ProductionCalendar
from tests import factories
from tests.cases.conftest import appeal
from tests.open311.conftest import (
    BASE,
    PERSONAL,
    REQUEST_FIELDS,
    W3C_MOSCOW,
    errors_of,
    filing,
    json_doc,
    json_items,
    xml_doc,
    xml_items,
)


def _file(client, key, region, **kw) -> str:
    response = client.post(f"{BASE}/requests.json", data={"api_key": key, **filing(region, **kw)})
    return json_doc(response, 201)[0]["service_request_id"]


def _set(db, request_id, **values) -> None:
    async def work(session):
        await session.execute(update(Case).where(Case.id == int(request_id)).values(**values))

    db.run(work)


def _list(client, key, fmt="json", **params):
    query = "&".join(f"{k}={quote(str(v))}" for k, v in {"api_key": key, **params}.items())
    return client.get(f"{BASE}/requests.{fmt}?{query}")


def test_a_request_in_both_formats_with_the_spec_fields(client, db, keys, region):
    key = keys.key()
    request_id = _file(client, key, region)
    [item] = json_items(
        json_doc(client.get(f"{BASE}/requests/{request_id}.json?api_key={key}")), REQUEST_FIELDS
    )
    assert item["service_request_id"] == request_id
    assert item["status"] == "open" and item["status_notes"] == "Assigned to the responsible agency"
    assert (item["service_code"], item["service_name"]) == ("roads.potholes", "Ямы")
    assert item["agency_responsible"] == "Администрация Краснодара"
    assert item["service_notice"] == "Обращение 59-ФЗ: 30 дней"  # the legal term that applies
    for field in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert W3C_MOSCOW.match(item[field]), item[field]
    expected = datetime.fromisoformat(item["expected_datetime"])
    requested = datetime.fromisoformat(item["requested_datetime"])
    # 30 calendar days, moved to the next working day when the last one is a day off: filed
    # between about 2 and 10 December, the term ends in the New Year holidays (2026-12-06
    # + 30 days is 5 January, due on Monday 11 January 2027 at 18:00)
    calendar = ProductionCalendar(ZoneInfo("Europe/Moscow"))
    assert expected == calendar.add(requested, 30, DeadlineUnit.calendar_days)
    assert timedelta(days=29) < expected - requested < timedelta(days=30 + 12)
    assert (item["lat"], item["long"]) == (45.0355, 38.9753)
    assert item["address"] == "ул. Красная, 1, Краснодар"
    assert item["address_id"] is None and item["zipcode"] is None
    # The submitting system gets its own text and media back, never the applicant.
    assert item["description"] == "Огромная яма у перехода"
    assert item["media_url"] == "https://photos.example/123.jpg"

    response = client.get(f"{BASE}/requests/{request_id}.xml?api_key={key}")
    [xml_item] = xml_items(xml_doc(response), "service_requests", "request", REQUEST_FIELDS)
    assert xml_item == {
        **{k: (None if v is None else str(v)) for k, v in item.items()},
    }
    for body in (response.text, _list(client, key).text, _list(client, key, "xml").text):
        for value in PERSONAL:
            assert value not in body


def test_status_open_and_closed(client, db, keys, region):
    key = keys.key()
    ids = {status: _file(client, key, region) for status in ("closed", "rejected", "returned")}
    _set(
        db, ids["closed"], status="closed", resolution="solved", final_answer="Мария, яму заделали"
    )
    _set(db, ids["rejected"], status="rejected")
    _set(db, ids["returned"], status="returned")
    items = {i["service_request_id"]: i for i in json_doc(_list(client, key))}
    assert items[ids["closed"]]["status"] == "closed"
    assert items[ids["closed"]]["status_notes"] == "Closed: resolved"
    assert items[ids["rejected"]]["status"] == "closed"
    assert items[ids["returned"]]["status"] == "open"
    assert "Мария" not in _list(client, key).text  # not even inside the agency's answer
    closed = json_doc(_list(client, key, status="closed"))
    assert {i["service_request_id"] for i in closed} == {ids["closed"], ids["rejected"]}
    both = json_doc(_list(client, key, status="open,closed"))
    assert len(both) == 3


def test_default_window_is_the_last_90_days_newest_first(client, db, keys, region):
    key = keys.key()
    now = datetime.now(UTC)
    old = _file(client, key, region)
    recent = _file(client, key, region)
    newest = _file(client, key, region)
    _set(db, old, created_at=now - timedelta(days=100))
    _set(db, recent, created_at=now - timedelta(days=89))
    listed = [i["service_request_id"] for i in json_doc(_list(client, key))]
    assert listed == [newest, recent]

    start = (now - timedelta(days=120)).isoformat()
    end = (now - timedelta(days=95)).isoformat()
    window = json_doc(_list(client, key, start_date=start, end_date=end))
    assert [i["service_request_id"] for i in window] == [old]
    # start_date alone: the 90 days from it (not up to now).
    from_start = json_doc(_list(client, key, start_date=start))
    assert [i["service_request_id"] for i in from_start] == [recent, old]
    # end_date alone: the 90 days up to it; a date alone is the region's midnight.
    day = (now - timedelta(days=95)).date().isoformat()
    assert [i["service_request_id"] for i in json_doc(_list(client, key, end_date=day))] == [old]


def test_at_most_1000_requests(client, db, keys, region):
    client_row = keys.client(source_system="bulk")
    key = f"{client_row.client_id}:{factories.PASSWORD}"
    now = datetime.now(UTC)
    db.add(
        *(
            Case(
                kind="appeal",
                status="new",
                source_system="bulk",
                external_id=f"b-{i}",
                submitted_by=f"client:{client_row.id}",
                text="Яма",
                created_at=now - timedelta(minutes=i),
                updated_at=now - timedelta(minutes=i),
            )
            for i in range(1001)
        )
    )
    listed = json_doc(_list(client, key))
    assert len(listed) == 1000
    times = [i["requested_datetime"] for i in listed]
    assert times == sorted(times, reverse=True)
    assert all(i["service_code"] is None for i in listed[:1])


def test_service_request_id_list_overrides_the_other_arguments(client, db, keys, region):
    key = keys.key()
    first, _, third = (_file(client, key, region) for _ in range(3))
    _set(db, first, created_at=datetime.now(UTC) - timedelta(days=300))
    listed = json_doc(_list(client, key, service_request_id=f"{first}, {third}", status="closed"))
    assert {i["service_request_id"] for i in listed} == {first, third}


def test_filter_by_service_code(client, db, keys, region):
    key = keys.key()
    pothole = _file(client, key, region)
    roads = _file(client, key, region, service_code="roads")
    health = _file(client, key, region, service_code="healthcare")
    assert [
        i["service_request_id"] for i in json_doc(_list(client, key, service_code="roads"))
    ] == [roads]
    both = json_doc(_list(client, key, service_code="roads.potholes,healthcare"))
    assert {i["service_request_id"] for i in both} == {pothole, health}


def test_bad_arguments_are_400_in_the_spec_format(client, db, keys, region):
    key = keys.key()
    now = datetime.now(UTC)
    cases = [
        ({"status": "pending"}, "status"),
        ({"service_code": "nope"}, "service_code"),
        ({"service_request_id": "12,abc"}, "service_request_id"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2026-11-01T10:00:00"}, "start_date"),  # no time zone
        (
            {"start_date": (now - timedelta(days=100)).isoformat(), "end_date": now.isoformat()},
            "start_date and end_date",
        ),
        (
            {"start_date": now.isoformat(), "end_date": (now - timedelta(days=1)).isoformat()},
            "end_date",
        ),
    ]
    for params, field in cases:
        [description] = errors_of(_list(client, key, "xml", **params), 400, "xml")
        assert description.startswith(field), (params, description)


def test_an_unencoded_plus_in_the_offset_is_understood(client, db, keys, region):
    key = keys.key()
    request_id = _file(client, key, region)
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    # "+03:00" sent raw in a query string arrives as " 03:00".
    response = client.get(f"{BASE}/requests.json?api_key={quote(key)}&start_date={start}%2B00:00")
    assert [i["service_request_id"] for i in json_doc(response)] == [request_id]
    raw = client.get(f"{BASE}/requests.json?api_key={quote(key)}&start_date={start}+00:00")
    assert [i["service_request_id"] for i in json_doc(raw)] == [request_id]


def test_a_client_sees_only_its_own_system_requests(client, db, keys, region):
    mine, theirs = keys.key(), keys.key()
    own = _file(client, mine, region)
    other = _file(client, theirs, region)
    assert [i["service_request_id"] for i in json_doc(_list(client, mine))] == [own]
    errors_of(client.get(f"{BASE}/requests/{other}.json?api_key={mine}"), 404)
    errors_of(client.get(f"{BASE}/requests/nope.xml?api_key={mine}"), 404, "xml")
    for missing in ("99999999", "٤٢", "9" * 30):
        errors_of(client.get(f"{BASE}/requests/{missing}.xml?api_key={mine}"), 404, "xml")
    listed = json_doc(_list(client, mine, service_request_id=f"{own},{other}"))
    assert [i["service_request_id"] for i in listed] == [own]


def test_agency_and_analyst_clients_never_get_personal_data(client, db, auth, keys, region):
    """Cases from another system, with everything personal filled in: an agency client sees
    its agency's, an analyst client all — and neither gets the applicant, the text or media."""
    headers = auth.headers("integration", source="pos")
    body = appeal(
        category_id=region.potholes.id,
        territory_id=region.krasnodar.id,
        text="Я, Иванова Мария, живу на Красной 1, телефон +79181234567",
        attachment_urls=["https://photos.example/maria.jpg"],
        address="ул. Красная, 1",
    )
    case = client.post("/api/v1/appeals", json=body, headers=headers).json()
    elsewhere = client.post(
        "/api/v1/appeals", json=appeal(territory_id=region.sochi.id), headers=headers
    ).json()
    assert case["agency_id"] == region.adm_krasnodar.id

    agency_key = keys.key("agency", agency_id=region.adm_krasnodar.id)
    listed = json_doc(_list(client, agency_key))
    assert [i["service_request_id"] for i in listed] == [str(case["id"])]
    errors_of(client.get(f"{BASE}/requests/{elsewhere['id']}.json?api_key={agency_key}"), 404)

    analyst_key = keys.key("analyst")
    both = json_doc(_list(client, analyst_key))
    assert {i["service_request_id"] for i in both} == {str(case["id"]), str(elsewhere["id"])}

    for key in (agency_key, analyst_key):
        for fmt in ("json", "xml"):
            response = client.get(f"{BASE}/requests/{case['id']}.{fmt}?api_key={key}")
            assert response.status_code == 200
            for value in (*PERSONAL, "Иванова Мария", "maria.jpg", "+79181234567"):
                assert value not in response.text
        [item] = json_doc(client.get(f"{BASE}/requests/{case['id']}.json?api_key={key}"))
        assert item["description"] is None and item["media_url"] is None
        assert item["agency_responsible"] == "Администрация Краснодара"


def test_text_that_xml_cannot_carry_is_escaped_or_dropped(client, db, keys, region):
    key = keys.key()
    text = 'Яма <b>"глубокая"</b> & опасная\x0b\x00 — 5 > 3'
    request_id = _file(client, key, region, description=text)
    root = xml_doc(client.get(f"{BASE}/requests/{request_id}.xml?api_key={key}"))
    assert root.findtext("request/description") == 'Яма <b>"глубокая"</b> & опасная — 5 > 3'
    [item] = json_doc(client.get(f"{BASE}/requests/{request_id}.json?api_key={key}"))
    assert item["description"] == text.replace("\x00", "")  # no database keeps NUL


def test_nul_characters_are_dropped_not_sent_to_the_database(client, db, keys, region):
    key = keys.key()
    assert json_doc(client.get(f"{BASE}/services/roads%00.json"))["service_code"] == "roads"
    assert json_doc(_list(client, key, service_code="roads\x00", status="open\x00")) == []
