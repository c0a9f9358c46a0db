"""Downloads: stats tables and the case list as CSV (UTF-8 with BOM) or XLSX, streamed; no
personal data for roles that may not read it."""

from __future__ import annotations

import csv
import io
import zipfile
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.cases.models import Case, CaseAgency
from app.stats import export
from app.stats.case_export import stream_rows
from app.stats.export import Column
from tests.stats.conftest import PERIOD, make_case, msk

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def parse_csv(response, delimiter=";") -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    text = response.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def sheet_xml(response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        names = book.namelist()
        assert "xl/workbook.xml" in names
        return "".join(
            book.read(n).decode() for n in sorted(names) if n.startswith("xl/worksheets/sheet")
        )


def test_summary_as_csv_for_russian_excel(client, auth, region):
    response = client.get(
        "/api/v1/stats/summary",
        params={**PERIOD, "group_by": "territory", "format": "csv"},
        headers=auth.headers("analyst"),
    )
    rows = parse_csv(response)
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="regiondesk-summary-')
    assert ".csv\"; filename*=UTF-8''regiondesk-summary-" in disposition
    krasnodar = next(r for r in rows if r["territory_code"] == "krasnodar")
    assert krasnodar["territory"] == "Краснодар"
    assert krasnodar["territory_id"] == str(region.krasnodar.id)
    assert krasnodar["received"] == "3" and krasnodar["closed_on_time"] == "2"
    assert krasnodar["first_response_p90_hours"] == "312,2"  # a decimal comma with ';'
    assert krasnodar["close_median_hours"] == "309,0"
    unnamed = next(r for r in rows if r["territory_code"] == "")
    assert unnamed["territory_id"] == "" and unnamed["on_time_share"] == ""
    assert len(rows) == 4


def test_comma_delimiter_uses_decimal_points(client, auth, region):
    response = client.get(
        "/api/v1/stats/summary",
        params={**PERIOD, "format": "csv", "delimiter": ","},
        headers=auth.headers("analyst"),
    )
    [row] = parse_csv(response, delimiter=",")
    assert row["first_response_p90_hours"] == "311.4" and row["received"] == "8"


def test_timeseries_and_league_as_csv(client, auth, region):
    h = auth.headers("analyst")
    days = parse_csv(
        client.get(
            "/api/v1/stats/timeseries",
            params={**PERIOD, "interval": "week", "format": "csv"},
            headers=h,
        )
    )
    assert [(r["bucket"], r["received"]) for r in days] == [
        ("2025-12-29", "5"),
        ("2026-01-05", "2"),
        ("2026-01-12", "1"),
    ]
    table = parse_csv(
        client.get(
            "/api/v1/stats/league",
            params={**PERIOD, "min_volume": 1, "format": "csv"},
            headers=h,
        )
    )
    assert [(r["rank"], r["comparable"], r["code"]) for r in table] == [
        ("1", "true", "minzdrav"),
        ("2", "true", "adm-krasnodar"),
        ("", "false", "adm-abinsk"),
    ]
    assert table[0]["name"] == "Минздрав края"


def test_summary_as_xlsx(client, auth, region):
    response = client.get(
        "/api/v1/stats/summary",
        params={**PERIOD, "group_by": "territory", "format": "xlsx"},
        headers=auth.headers("analyst"),
    )
    xml = sheet_xml(response)
    assert "Краснодар" in xml and "Абинский район" in xml and "first_response_p90_hours" in xml
    assert "<v>312.2</v>" in xml  # numbers are numbers
    assert response.headers["content-disposition"].endswith(".xlsx")


def _export(client, headers, **params):
    return client.get("/api/v1/exports/cases", params=params, headers=headers)


def test_case_export_personal_data_only_for_roles_that_may_read_it(client, auth, region):
    operator = parse_csv(_export(client, auth.headers("operator")))
    assert len(operator) == 10
    assert "Иванова Мария Петровна" in {r["applicant_name"] for r in operator}
    response = _export(client, auth.headers("analyst"))
    analyst = parse_csv(response)
    assert len(analyst) == 10
    for field in ("applicant_name", "applicant_email", "applicant_phone", "author_handle"):
        assert field not in analyst[0]
    assert "Иванова" not in response.content.decode("utf-8-sig")
    xlsx = _export(client, auth.headers("analyst"), format="xlsx")
    xml = sheet_xml(xlsx)
    assert "Иванова" not in xml and "applicant_name" not in xml and "Краснодар" in xml


def test_case_export_columns_and_local_times(client, auth, region):
    rows = {r["id"]: r for r in parse_csv(_export(client, auth.headers("operator")))}
    a = rows[str(region.cases["A"].id)]
    assert a["kind"] == "incident" and a["status"] == "closed"
    assert a["category"] == "Ямы" and a["territory"] == "Краснодар"
    assert a["agency"] == "Администрация Краснодара"
    assert a["created_at"] == "2025-12-30 15:00:00"  # Moscow time
    assert a["due_at"] == "2026-01-12 15:00:00"
    assert a["close_hours"] == "309,0" and a["close_working_hours"] == "6,0"
    assert a["overdue"] == "false"
    c = rows[str(region.cases["C"].id)]
    assert c["overdue"] == "true" and c["closed_at"] == ""


def test_case_export_uses_the_list_filters_and_sort(client, auth, region):
    h = auth.headers("operator")
    ids = {name: str(case.id) for name, case in region.cases.items()}
    appeals = parse_csv(_export(client, h, kind="appeal", sort="created_at"))
    assert [r["id"] for r in appeals] == [ids["D"], ids["H"], ids["E"]]
    roads = parse_csv(_export(client, h, category_id=region.roads.id))
    assert {r["id"] for r in roads} == {ids[n] for n in ("A", "B", "C", "F", "G", "X1", "X2")}
    closed = parse_csv(_export(client, h, status="closed", created_from="2026-01-01T00:00:00Z"))
    assert [r["id"] for r in closed] == [ids["E"]]
    refused = _export(client, h, format="json")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["query", "format"]


def test_case_export_for_agency_staff_follows_visibility(client, db, auth, region):
    cases = region.cases
    db.add(*(CaseAgency.given(cases[n], region.adm_krasnodar.id) for n in ("A", "B", "X1", "X2")))
    rows = parse_csv(_export(client, auth.headers("agency", agency_id=region.adm_krasnodar.id)))
    assert {r["id"] for r in rows} == {str(cases[n].id) for n in ("A", "B", "X1", "X2")}
    assert "applicant_name" in rows[0]  # agency staff may read personal data of their cases


def test_text_never_becomes_a_formula(client, db, auth, region):
    evil = '=HYPERLINK("http://evil.example","Нажми")'
    db.add(make_case(created=msk(1, 13, 11), text=evil, address="+7 (861) 000"))
    h = auth.headers("operator")
    rows = parse_csv(_export(client, h, sort="-created_at"))
    row = next(r for r in rows if "HYPERLINK" in r["text"])
    assert row["text"] == "'" + evil and row["address"] == "'+7 (861) 000"
    xml = sheet_xml(_export(client, h, format="xlsx"))
    assert "HYPERLINK" in xml and "<f>" not in xml  # a string cell, never a formula


def test_case_rows_stream_in_chunks(client, db, region):
    stmt = select(Case.id).order_by(Case.id)
    sessionmaker = client.app.state.sessionmaker

    async def sizes():
        return [len(rows) async for rows in stream_rows(sessionmaker, stmt, chunk=3)]

    assert client.portal.call(sizes) == [3, 3, 3, 1]


@pytest.mark.parametrize("rows", [5, 6])
def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(monkeypatch, rows):
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 3)  # header + 2 rows per sheet
    book = export._XlsxFile([Column("n", "int")], "cases", ZoneInfo("Europe/Moscow"))
    try:
        book.write([[n] for n in range(rows)])
        book.close()
        with zipfile.ZipFile(book.path) as z:
            sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == 3
    finally:
        book.remove()
