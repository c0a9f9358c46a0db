"""Open311 test helpers: a small region, machine clients with api_keys, and readers of the
spec's two formats that check every document against the spec's fields and their order."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import pytest

from app.routing.models import RoutingRule
from tests import factories

# Field names and order from GeoReport v2 (wiki.open311.org/GeoReport_v2).
SERVICE_FIELDS = [
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
]
ATTRIBUTE_FIELDS = [
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
]
CREATED_FIELDS = ["service_request_id", "service_notice", "account_id"]
REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
DISCOVERY_FIELDS = ["changeset", "contact", "key_service", "endpoints"]
ENDPOINT_FIELDS = ["specification", "url", "changeset", "type", "formats"]
ERROR_FIELDS = ["code", "description"]
# W3C datetime with seconds and a time zone; the region (Europe/Moscow) is at +03:00.
W3C_MOSCOW = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00$")
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
BASE = "/open311/v2"


def json_doc(response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    return response.json()


def xml_doc(response, status: int = 200) -> ET.Element:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(XML_DECLARATION)
    return ET.fromstring(response.content)


def xml_items(root: ET.Element, root_tag: str, item_tag: str, fields: list[str]) -> list[dict]:
    """A spec container (<services><service>…) as dicts; checks the tags and their order."""
    assert root.tag == root_tag
    items = []
    for element in root:
        assert element.tag == item_tag
        assert [child.tag for child in element] == fields
        items.append({child.tag: child.text for child in element})
    return items


def json_items(document: Any, fields: list[str]) -> list[dict]:
    assert isinstance(document, list)
    for item in document:
        assert list(item) == fields
    return document


def errors_of(response, status: int, fmt: str = "json") -> list[str]:
    """The spec's error list: [{code, description}] / <errors><error>; the descriptions."""
    assert response.status_code == status, response.text
    if fmt == "json":
        errors = json_items(json_doc(response, status), ERROR_FIELDS)
        assert all(e["code"] == status for e in errors)
        return [e["description"] for e in errors]
    errors = xml_items(xml_doc(response, status), "errors", "error", ERROR_FIELDS)
    assert all(e["code"] == str(status) for e in errors)
    return [e["description"] for e in errors]


@dataclass
class Region:
    roads: Any
    potholes: Any
    health: Any
    old: Any
    krasnodar: Any
    sochi: Any
    adm_krasnodar: Any
    adm_sochi: Any
    centre: Any


@pytest.fixture
def region(db) -> Region:
    roads = db.add(factories.category(code="roads", name_ru="Дороги", name_en="Roads"))
    potholes = db.add(
        factories.category(
            code="roads.potholes", name_ru="Ямы", name_en="Potholes", parent_id=roads.id
        )
    )
    health = db.add(
        factories.category(code="healthcare", name_ru="Здравоохранение", name_en="Healthcare")
    )
    old = db.add(factories.category(code="old", is_active=False))
    krasnodar = db.add(factories.territory(code="krasnodar", name="Краснодар"))
    sochi = db.add(factories.territory(code="sochi", name="Сочи"))
    adm_krasnodar = db.add(factories.agency(code="adm-krasnodar", name="Администрация Краснодара"))
    adm_sochi = db.add(factories.agency(code="adm-sochi", name="Администрация Сочи"))
    centre = db.add(
        factories.agency(
            code="cur",
            name="ЦУР Краснодарского края",
            kind="control_centre",
            email="cur@krasnodar.example",
            phone="+7 861 000-00-00",
        )
    )
    db.add(
        RoutingRule(
            name="Дороги Краснодара",
            position=10,
            category_ids=[roads.id, potholes.id],
            territory_ids=[krasnodar.id],
            agency_id=adm_krasnodar.id,
        )
    )
    return Region(roads, potholes, health, old, krasnodar, sochi, adm_krasnodar, adm_sochi, centre)


class Keys:
    """Machine clients and their api_keys (`<client_id>:<client_secret>`)."""

    def __init__(self, db):
        self.db = db

    def client(self, **kw):
        return self.db.add(factories.api_client(**kw))

    def key(self, role: str = "integration", **kw) -> str:
        if role != "integration":
            kw.setdefault("source_system", None)
        client = self.client(role=role, **kw)
        return f"{client.client_id}:{factories.PASSWORD}"


@pytest.fixture
def keys(db) -> Keys:
    return Keys(db)


def filing(region: Region, **kw) -> dict[str, str]:
    """A complete POST requests form, as a mobile or web client would send it."""
    return {
        "service_code": "roads.potholes",
        "lat": "45.0355",
        "long": "38.9753",
        "address_string": "ул. Красная, 1, Краснодар",
        "attribute[territory]": "krasnodar",
        "first_name": "Мария",
        "last_name": "Иванова",
        "email": "maria@example.org",
        "phone": "+7 (918) 123-45-67",
        "description": "Огромная яма у перехода",
        "media_url": "https://photos.example/123.jpg",
        **kw,
    }


PERSONAL = ("Мария", "Иванова", "maria@example.org", "918", "123-45-67", "79181234567")
