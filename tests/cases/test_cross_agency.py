"""Another agency's, another integration's case: every case route answers 404 and changes
nothing; analysts never receive personal data on any case route."""

from __future__ import annotations

import pytest

from tests.cases.conftest import appeal

CASE_ROUTES = [
    ("GET", "/api/v1/cases/{id}", None),
    ("GET", "/api/v1/appeals/{id}", None),
    ("GET", "/api/v1/cases/{id}/events", None),
    ("POST", "/api/v1/cases/{id}/accept", None),
    ("POST", "/api/v1/cases/{id}/interim-answer", {"text": "x", "planned_date": "2026-12-01"}),
    (
        "POST",
        "/api/v1/cases/{id}/close",
        {"answer": "x", "resolution": "solved", "responsible_official": "x"},
    ),
    ("POST", "/api/v1/cases/{id}/return", {"reason": "wrong_territory", "comment": "x"}),
]


@pytest.fixture
def assigned_appeal(client, auth, world):
    submitter = auth.headers("integration", source="pos")
    case = client.post("/api/v1/appeals", json=appeal(), headers=submitter).json()
    operator = auth.headers("operator")
    response = client.post(
        f"/api/v1/cases/{case['id']}/assign",
        headers=operator,
        json={"agency_id": world.adm_krasnodar.id},
    )
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(("method", "path", "body"), CASE_ROUTES)
@pytest.mark.parametrize("intruder", ["other_agency", "other_integration"])
def test_foreign_case_is_not_found_and_unchanged(
    client, auth, world, assigned_appeal, method, path, body, intruder
):
    headers = (
        auth.headers("agency", agency_id=world.adm_sochi.id)
        if intruder == "other_agency"
        else auth.headers("integration", source="someone-else")
    )
    url = path.format(id=assigned_appeal["id"])
    response = client.request(method, url, json=body, headers=headers)
    # Integration clients lack the agency scopes for actions (403); reads are 404 for both.
    expected = 404 if method == "GET" or intruder == "other_agency" else 403
    assert response.status_code == expected, response.text
    assert "Иванова" not in response.text
    operator = auth.headers("operator")
    after = client.get(f"/api/v1/cases/{assigned_appeal['id']}", headers=operator).json()
    assert after["version"] == assigned_appeal["version"]
    assert after["status"] == "assigned"


def test_analyst_sees_no_personal_data_anywhere(client, auth, assigned_appeal):
    analyst = auth.headers("analyst")
    for url in (
        f"/api/v1/cases/{assigned_appeal['id']}",
        f"/api/v1/appeals/{assigned_appeal['id']}",
        "/api/v1/cases",
        "/api/v1/appeals",
        f"/api/v1/cases/{assigned_appeal['id']}/events",
    ):
        response = client.get(url, headers=analyst)
        assert response.status_code == 200
        for secret in ("Иванова", "maria@example.org", "+79181234567"):
            assert secret not in response.text, url
