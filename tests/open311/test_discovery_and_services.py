"""Discovery, the service list and service definitions: public, in both formats, with the
spec's fields in the spec's order."""

from __future__ import annotations

import re

from tests.open311.conftest import (
    ATTRIBUTE_FIELDS,
    BASE,
    DISCOVERY_FIELDS,
    ENDPOINT_FIELDS,
    SERVICE_FIELDS,
    errors_of,
    json_doc,
    json_items,
    xml_doc,
    xml_items,
)


def test_discovery_in_json_and_xml(client, region):
    document = json_doc(client.get(f"{BASE}/discovery.json"))
    assert list(document) == DISCOVERY_FIELDS
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+03:00$", document["changeset"])
    assert "cur@krasnodar.example" in document["contact"]
    assert "<client_id>:<client_secret>" in document["key_service"]
    [endpoint] = document["endpoints"]
    assert list(endpoint) == ENDPOINT_FIELDS
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert endpoint["type"] == "test"  # REGIONDESK_ENV=test; production says production
    assert endpoint["formats"] == ["text/xml", "application/json"]

    root = xml_doc(client.get(f"{BASE}/discovery.xml"))
    assert root.tag == "discovery"
    assert [child.tag for child in root] == DISCOVERY_FIELDS
    assert root.findtext("changeset") == document["changeset"]
    [xml_endpoint] = root.find("endpoints")
    assert xml_endpoint.tag == "endpoint"
    assert [child.tag for child in xml_endpoint] == ENDPOINT_FIELDS
    assert [f.text for f in xml_endpoint.find("formats")] == endpoint["formats"]
    assert [f.tag for f in xml_endpoint.find("formats")] == ["format", "format"]


def test_discovery_changeset_moves_when_services_change(client, auth, region):
    before = json_doc(client.get(f"{BASE}/discovery.json"))["changeset"]
    admin = auth.headers("admin")
    response = client.patch(
        f"/api/v1/categories/{region.health.id}", json={"name_en": "Health"}, headers=admin
    )
    assert response.status_code == 200, response.text
    after = json_doc(client.get(f"{BASE}/discovery.json"))["changeset"]
    assert after > before


def test_every_active_category_is_a_service_grouped_by_sector(client, region):
    services = json_items(json_doc(client.get(f"{BASE}/services.json")), SERVICE_FIELDS)
    by_code = {s["service_code"]: s for s in services}
    assert set(by_code) == {"healthcare", "roads", "roads.potholes"}  # not the inactive one
    potholes = by_code["roads.potholes"]
    assert potholes["service_name"] == "Ямы"
    assert potholes["group"] == "Дороги"  # the sector
    assert potholes["description"] == "Potholes"
    assert potholes["metadata"] is True and potholes["type"] == "realtime"
    assert "Roads" in potholes["keywords"].split(", ")
    assert by_code["roads"]["group"] == "Дороги"

    root = xml_doc(client.get(f"{BASE}/services.xml"))
    xml_services = xml_items(root, "services", "service", SERVICE_FIELDS)
    assert {s["service_code"]: s for s in xml_services}["roads.potholes"] == {
        **potholes,
        "metadata": "true",
    }


def test_service_definition_offers_the_territory(client, region):
    # The code has a dot of its own: the format is what follows the last one.
    definition = json_doc(client.get(f"{BASE}/services/roads.potholes.json"))
    assert list(definition) == ["service_code", "attributes"]
    assert definition["service_code"] == "roads.potholes"
    [attribute] = json_items(definition["attributes"], ATTRIBUTE_FIELDS)
    assert attribute["code"] == "territory"
    assert attribute["variable"] is True and attribute["required"] is False
    assert attribute["datatype"] == "singlevaluelist" and attribute["order"] == 1
    assert {"key": "krasnodar", "name": "Краснодар"} in attribute["values"]

    root = xml_doc(client.get(f"{BASE}/services/roads.potholes.xml"))
    assert root.tag == "service_definition"
    assert root.findtext("service_code") == "roads.potholes"
    [xml_attribute] = xml_items(
        root.find("attributes"), "attributes", "attribute", ATTRIBUTE_FIELDS
    )
    assert xml_attribute["required"] == "false"
    values = root.find("attributes/attribute/values")
    assert {(v.findtext("key"), v.findtext("name")) for v in values} >= {
        ("krasnodar", "Краснодар"),
        ("sochi", "Сочи"),
    }


def test_unknown_or_inactive_service_is_404_in_the_spec_format(client, region):
    for code in ("nope", "old"):
        [description] = errors_of(client.get(f"{BASE}/services/{code}.json"), 404)
        assert code in description
        [description] = errors_of(client.get(f"{BASE}/services/{code}.xml"), 404, "xml")
        assert code in description


def test_a_format_other_than_json_or_xml_is_404(client, region):
    for path in ("services.yaml", "discovery.html", "services/roads.csv"):
        [description] = errors_of(client.get(f"{BASE}/{path}"), 404, "xml")
        assert re.search(r"\.json or \.xml", description)


def test_paths_without_a_format_and_wrong_methods_answer_in_the_spec_format(client, region):
    for path in ("services", "requests", "discovery", "nothing.json"):
        fmt = "json" if path.endswith(".json") else "xml"
        errors_of(client.get(f"{BASE}/{path}"), 404, fmt)
    response = client.delete(f"{BASE}/requests.json")
    errors_of(response, 405)
    assert response.headers["allow"]
    # The rest of the API keeps its problem+json.
    response = client.get("/api/v1/nothing")
    assert response.headers["content-type"] == "application/problem+json"


def test_open311_routes_are_documented_under_their_tag(client):
    paths = client.get("/openapi.json").json()["paths"]
    operations = {
        (method.upper(), path): op
        for path, ops in paths.items()
        if path.startswith("/open311/")
        for method, op in ops.items()
    }
    assert set(operations) == {
        ("GET", "/open311/v2/discovery.{format}"),
        ("GET", "/open311/v2/services.{format}"),
        ("GET", "/open311/v2/services/{service_code}.{format}"),
        ("POST", "/open311/v2/requests.{format}"),
        ("GET", "/open311/v2/requests.{format}"),
        ("GET", "/open311/v2/requests/{service_request_id}.{format}"),
    }
    for op in operations.values():
        assert op["tags"] == ["Open311"]
        assert "422" not in op["responses"]
        assert "text/xml" in op["responses"]["default"]["content"]
