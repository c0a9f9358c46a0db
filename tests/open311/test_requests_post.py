"""POST requests: a form-encoded Open311 request becomes a routed 59-ФЗ appeal."""

from __future__ import annotations

from sqlalchemy import func, select

from app.cases.models import Case
from app.open311.errors import InvalidArgument
from app.open311.service import Open311Service
from tests.open311.conftest import (
    BASE,
    CREATED_FIELDS,
    PERSONAL,
    errors_of,
    filing,
    json_doc,
    json_items,
    xml_doc,
    xml_items,
)


def _cases(db) -> list[Case]:
    async def work(session):
        return list((await session.execute(select(Case).order_by(Case.id))).scalars())

    return db.run(work)


def test_a_request_becomes_a_routed_appeal(client, db, auth, keys, region):
    client_row = keys.client(source_system="city-app")
    key = f"{client_row.client_id}:correct-horse-battery"
    response = client.post(f"{BASE}/requests.json", data={"api_key": key, **filing(region)})
    [created] = json_items(json_doc(response, 201), CREATED_FIELDS)
    assert created["account_id"] is None
    request_id = created["service_request_id"]
    assert response.headers["location"] == f"{BASE}/requests/{request_id}.json"
    for value in PERSONAL:  # the answer carries no personal data
        assert value not in response.text

    [case] = _cases(db)
    assert str(case.id) == request_id
    assert (case.kind, case.channel, case.legal_regime) == ("appeal", "web", "fz59")
    assert case.source_system == "city-app" and case.submitted_by == f"client:{client_row.id}"
    assert case.external_id.startswith("open311-")
    assert case.category_id == region.potholes.id and case.territory_id == region.krasnodar.id
    assert (case.latitude, case.longitude) == (45.0355, 38.9753)
    assert case.address == "ул. Красная, 1, Краснодар"
    assert case.text == "Огромная яма у перехода"
    assert case.applicant_name == "Мария Иванова"
    assert case.applicant_email == "maria@example.org"
    assert case.applicant_phone == "+79181234567"
    assert case.attachment_urls == ["https://photos.example/123.jpg"]
    # Routed by the territory attribute, with the 59-ФЗ deadline.
    assert case.status == "assigned" and case.agency_id == region.adm_krasnodar.id
    assert case.due_at is not None
    notice = created["service_notice"]
    assert case.number in notice and "Администрация Краснодара" in notice
    assert "+03:00" in notice


def test_xml_answer_and_the_mobile_channel(client, db, keys, region):
    form = {"api_key": keys.key(), **filing(region, device_id="android-42")}
    del form["attribute[territory]"]
    root = xml_doc(client.post(f"{BASE}/requests.xml", data=form), 201)
    [created] = xml_items(root, "service_requests", "request", CREATED_FIELDS)
    assert created["account_id"] is None  # <account_id/>
    assert "the control centre will route it" in created["service_notice"]
    [case] = _cases(db)
    assert created["service_request_id"] == str(case.id)
    assert case.channel == "mobile_app" and case.status == "new"


def test_the_same_external_id_gives_back_the_request_already_filed(client, db, keys, region):
    form = {"api_key": keys.key(), **filing(region, external_id="crm-1001")}
    first = json_doc(client.post(f"{BASE}/requests.json", data=form), 201)
    again = json_doc(client.post(f"{BASE}/requests.json", data=form), 200)
    assert again[0]["service_request_id"] == first[0]["service_request_id"]
    [case] = _cases(db)
    assert case.external_id == "crm-1001"


def test_api_key_may_come_in_the_query_too(client, db, keys, region):
    response = client.post(f"{BASE}/requests.json?api_key={keys.key()}", data=filing(region))
    json_doc(response, 201)


def test_missing_or_unknown_service_code(client, db, keys, region):
    key = keys.key()
    form = filing(region)
    del form["service_code"]
    [description] = errors_of(
        client.post(f"{BASE}/requests.json", data={"api_key": key, **form}), 400
    )
    assert "service_code" in description
    for code in ("nope", "old"):  # unknown, inactive
        form = filing(region, service_code=code, api_key=key)
        [description] = errors_of(client.post(f"{BASE}/requests.xml", data=form), 404, "xml")
        assert code in description
    assert _cases(db) == []


def test_each_problem_is_its_own_error(client, db, keys, region):
    form = filing(
        region,
        api_key=keys.key(),
        lat="",
        long="",
        address_string="",
        description="",
        first_name="",
        last_name="",
    )
    descriptions = errors_of(client.post(f"{BASE}/requests.json", data=form), 400)
    assert len(descriptions) == 3
    assert any("location" in d for d in descriptions)
    assert any("description" in d for d in descriptions)
    assert any("first_name" in d for d in descriptions)
    assert _cases(db) == []


def test_invalid_fields_are_named_as_the_client_sent_them(client, db, keys, region):
    key = keys.key()
    cases = [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"media_url": "not a url"}, "media_url"),
        ({"lat": "91"}, "lat"),
        ({"lat": "north"}, "lat"),
        ({"long": ""}, "lat and long"),
        ({"description": "x" * 4001}, "description"),
        ({"attribute[territory]": "atlantis"}, "attribute[territory]"),
        ({"attribute[colour]": "red"}, "attribute[colour]"),
        (
            {"lat": "", "long": "", "address_string": "", "address_id": "545483"},
            "address_id",
        ),
    ]
    for change, field in cases:
        form = {"api_key": key, **filing(region), **change}
        descriptions = errors_of(client.post(f"{BASE}/requests.json", data=form), 400)
        assert any(d.startswith(field) for d in descriptions), (change, descriptions)
    assert _cases(db) == []


def test_address_string_alone_is_a_location(client, db, keys, region):
    form = filing(region, api_key=keys.key(), lat="", long="")
    json_doc(client.post(f"{BASE}/requests.json", data=form), 201)
    [case] = _cases(db)
    assert case.latitude is None and case.address == "ул. Красная, 1, Краснодар"


def test_only_submitting_clients_may_file(client, db, keys, region):
    for role, kw in (("analyst", {}), ("agency", {"agency_id": region.adm_sochi.id})):
        form = {"api_key": keys.key(role, **kw), **filing(region)}
        [description] = errors_of(client.post(f"{BASE}/requests.json", data=form), 403)
        assert "cases:submit" in description
    assert _cases(db) == []


def test_an_error_after_the_appeal_was_written_leaves_nothing_behind(
    client, db, keys, region, monkeypatch
):
    """Errors are rendered after the request's unit of work rolled back: a failure late in
    the request commits nothing, whether the failure is expected or not."""

    async def refuse(self, case):
        raise InvalidArgument("refused late")

    async def crash(self, case):
        raise RuntimeError("boom")

    for failure, status in ((refuse, 400), (crash, 500)):
        monkeypatch.setattr(Open311Service, "_notice", failure)
        form = {"api_key": keys.key(), **filing(region)}
        response = client.post(f"{BASE}/requests.xml", data=form)
        errors_of(response, status, "xml")
        assert "boom" not in response.text

    async def count(session):
        return (await session.execute(select(func.count()).select_from(Case))).scalar_one()

    assert db.run(count) == 0
