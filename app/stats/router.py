"""Statistics, the league table and the exports. Every stats route answers JSON, or the same
table as CSV or XLSX with `format=`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import PlainValidator, WithJsonSchema

from app.auth.deps import Principal, requires
from app.cases.models import CaseKind, Priority
from app.cases.queries import SortKey
from app.cases.router import Filters
from app.core.config import Settings, app_settings
from app.core.db import SessionDep
from app.core.schemas import IdFilter
from app.stats.case_export import stream_rows
from app.stats.export import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    Column,
    one_chunk,
    table_response,
)
from app.stats.schemas import (
    Delimiter,
    Dimension,
    ExportFormat,
    Interval,
    League,
    LeagueBy,
    Measures,
    Source,
    Summary,
    Timeseries,
)
from app.stats.service import StatsFilters, StatsRequest, StatsService
from app.stats.snapshots import (
    CACHE_CONTROL,
    Snapshot,
    SnapshotStore,
    freshness,
    snapshot_store,
)

router = APIRouter(prefix="/api/v1", tags=["statistics"])

StatsReader = requires("stats:read")
SettingsDep = Annotated[Settings, Depends(app_settings)]

DEFINITIONS = """
The cohort is the cases **received** (registered) in the period that match the filters; the
period's dates are local dates of the region's time zone, `date_to` inclusive (a date-time is
an exact instant, `date_to` exclusive). open = new, assigned, in_progress or returned;
overdue_now = open and `due_at` < now; closed on time = closed and `closed_at` <= `due_at`
(share = on time / closed); durations are from registration to the first response (interim
answer, close or return) and to the close, in calendar hours and in working hours on the
production calendar, median and 90th percentile by linear interpolation (`percentile_cont`);
reopen rate = reopened at least once / closed or rejected at least once. Agency staff get their
own agency's figures only (asking for another agency is 403). See docs/statistics.md.

**Freshness.** The figures are exact as of `generated_at`. An answer is computed once and then
served from a stored snapshot while it is younger than `REGIONDESK_STATS_MAX_AGE_SECONDS`
(60 s by default); the worker recomputes the ones people keep asking for before they expire.
The response says how old it is (`Age`, seconds) and how much longer it may be reused
(`Cache-Control: private, max-age=N`). Send `Cache-Control: no-cache` (or `max-age=0`) to have
the figures computed now, `max-age=N` to accept only an answer at most N seconds old. The CSV
and XLSX downloads are the same answer in another format.
"""

EXPORTS = {
    200: {
        "description": "JSON; with `format=csv` a CSV file (UTF-8 with BOM), with "
        "`format=xlsx` an Excel workbook",
        "content": {
            CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
        "headers": {
            "Age": {
                "description": "Seconds since the figures were computed (`generated_at`)",
                "schema": {"type": "integer", "minimum": 0},
            },
            CACHE_CONTROL: {
                "description": "`private, max-age=N`: N more seconds the answer is served as it is",
                "schema": {"type": "string"},
            },
        },
    },
    403: {"description": "Agency staff asking for another agency's figures"},
    422: {"description": "A bad parameter, named in `errors[].loc`"},
}


def _date_or_instant(value: Any) -> date | datetime:
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("expected a date (2026-01-31) or a date-time (ISO 8601)") from None


DateOrInstant = Annotated[
    date | datetime,
    PlainValidator(_date_or_instant),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]


async def stats_filters(
    date_from: Annotated[
        DateOrInstant | None,
        Query(description="First local day of the period (or an instant); empty: no limit"),
    ] = None,
    date_to: Annotated[
        DateOrInstant | None,
        Query(description="Last local day, inclusive (or an instant, exclusive); empty: no limit"),
    ] = None,
    kind: CaseKind | None = None,
    category_id: Annotated[
        IdFilter, Query(description="A category; a sector with its subcategories")
    ] = None,
    territory_id: IdFilter = None,
    agency_id: IdFilter = None,
    source: Annotated[
        Source | None, Query(description="Incident network or appeal channel")
    ] = None,
    priority: Priority | None = None,
) -> StatsFilters:
    return StatsFilters(
        date_from=date_from,
        date_to=date_to,
        kind=kind,
        category_id=category_id,
        territory_id=territory_id,
        agency_id=agency_id,
        source=source,
        priority=priority,
    )


StatsFiltersDep = Annotated[StatsFilters, Depends(stats_filters)]
FormatParam = Annotated[
    ExportFormat, Query(alias="format", description="json, or a download: csv or xlsx")
]
DelimiterParam = Annotated[
    Delimiter,
    Query(description="CSV only: ';' for Excel in Russian locales (decimal comma), or ','"),
]


CacheControlHeader = Annotated[
    str | None,
    Header(
        alias=CACHE_CONTROL,
        max_length=200,
        description="`no-cache` (or `max-age=0`): compute the figures now; `max-age=N`: "
        "accept only an answer at most N seconds old. Without it: a stored answer younger "
        "than REGIONDESK_STATS_MAX_AGE_SECONDS",
    ),
]


def _service(session, settings: Settings, principal: Principal) -> StatsService:
    return StatsService(session, settings, principal)


async def _snapshot(
    request: Request, stats: StatsRequest, cache_control: str | None
) -> tuple[Snapshot, SnapshotStore]:
    store = snapshot_store(request)
    return await store.get(stats, freshness(cache_control)), store


def _json(snapshot: Snapshot, store: SnapshotStore) -> Response:
    """The stored bytes as they are: no model round trip on the way out."""
    return Response(snapshot.body, media_type="application/json", headers=store.headers(snapshot))


def _file_stem(kind: str, at: datetime, settings: Settings) -> str:
    local = at.astimezone(settings.tz)
    return f"regiondesk-{kind}-{local:%Y%m%d-%H%M}"


def _measure_columns() -> list[Column]:
    return [
        Column(name, "int" if field.annotation is int else "float")
        for name, field in Measures.model_fields.items()
    ]


def _key_columns(group_by: Sequence[Dimension]) -> list[Column]:
    return [
        column
        for d in group_by
        for column in (Column(f"{d.value}_id", "int"), Column(f"{d.value}_code"), Column(d.value))
    ]


def _key_values(keys) -> list[Any]:
    return [value for k in keys for value in (k.id, k.code, k.name)]


def _measure_values(row: Measures) -> list[Any]:
    return [getattr(row, name) for name in Measures.model_fields]


def _download(fmt, snapshot: Snapshot, store: SnapshotStore, kind, columns, rows, delimiter):
    """The stored answer's table as a file, named after the time of its figures."""
    settings = store.settings
    response = table_response(
        fmt.value,
        columns,
        one_chunk(rows),
        filename=_file_stem(kind, snapshot.generated_at, settings),
        sheet=kind,
        delimiter=delimiter,
        tz=settings.tz,
    )
    response.headers.update(store.headers(snapshot))
    return response


@router.get(
    "/stats/summary",
    response_model=Summary,
    responses=EXPORTS,
    summary="Figures for a period, grouped by up to two dimensions",
    description=DEFINITIONS,
)
async def stats_summary(
    request: Request,
    principal: StatsReader,
    session: SessionDep,
    settings: SettingsDep,
    filters: StatsFiltersDep,
    group_by: Annotated[
        list[Dimension],
        Query(description="Zero to two dimensions (repeat the parameter); none: one total row"),
    ] = [],  # noqa: B006 - FastAPI copies defaults
    fmt: FormatParam = ExportFormat.json,
    delimiter: DelimiterParam = ";",
    cache_control: CacheControlHeader = None,
):
    stats = _service(session, settings, principal).resolve_summary(filters, group_by)
    snapshot, store = await _snapshot(request, stats, cache_control)
    if fmt is ExportFormat.json:
        return _json(snapshot, store)
    result = Summary.model_validate_json(snapshot.body)
    columns = _key_columns(group_by) + _measure_columns()
    rows = [_key_values(r.keys) + _measure_values(r) for r in result.items]
    return _download(fmt, snapshot, store, "summary", columns, rows, delimiter)


@router.get(
    "/stats/timeseries",
    response_model=Timeseries,
    responses=EXPORTS,
    summary="The same figures by day, week or month, buckets without cases as zeros",
    description=DEFINITIONS
    + "\nWithout a period: the last 30 days, 12 weeks or 12 months up to today. At most "
    "1000 buckets.",
)
async def stats_timeseries(
    request: Request,
    principal: StatsReader,
    session: SessionDep,
    settings: SettingsDep,
    filters: StatsFiltersDep,
    interval: Interval = Interval.day,
    group_by: Annotated[
        list[Dimension], Query(description="Optionally one dimension: a series per group")
    ] = [],  # noqa: B006
    fmt: FormatParam = ExportFormat.json,
    delimiter: DelimiterParam = ";",
    cache_control: CacheControlHeader = None,
):
    service = _service(session, settings, principal)
    stats = service.resolve_timeseries(filters, interval, group_by)
    snapshot, store = await _snapshot(request, stats, cache_control)
    if fmt is ExportFormat.json:
        return _json(snapshot, store)
    result = Timeseries.model_validate_json(snapshot.body)
    columns = [Column("bucket", "date"), *_key_columns(group_by), *_measure_columns()]
    rows = [[r.bucket, *_key_values(r.keys), *_measure_values(r)] for r in result.items]
    return _download(fmt, snapshot, store, "timeseries", columns, rows, delimiter)


@router.get(
    "/stats/league",
    response_model=League,
    responses=EXPORTS,
    summary="Agencies or municipalities ranked by on-time share, then median close time",
    description=DEFINITIONS
    + "\nRanked by on_time_share (highest first), then close_median_working_hours (lowest "
    "first). A row with fewer closed cases than `min_volume` is not comparable: unranked and "
    "listed after the ranked ones. Municipalities are city districts, municipal districts and "
    "okrugs; a settlement's cases count for its municipality.",
)
async def stats_league(
    request: Request,
    principal: StatsReader,
    session: SessionDep,
    settings: SettingsDep,
    filters: StatsFiltersDep,
    by: LeagueBy = LeagueBy.agency,
    min_volume: Annotated[
        int, Query(ge=1, le=1_000_000, description="Closed cases needed to be ranked")
    ] = 20,
    fmt: FormatParam = ExportFormat.json,
    delimiter: DelimiterParam = ";",
    cache_control: CacheControlHeader = None,
):
    stats = _service(session, settings, principal).resolve_league(filters, by, min_volume)
    snapshot, store = await _snapshot(request, stats, cache_control)
    if fmt is ExportFormat.json:
        return _json(snapshot, store)
    result = League.model_validate_json(snapshot.body)
    columns = [
        Column("rank", "int"),
        Column("comparable", "bool"),
        Column("id", "int"),
        Column("code"),
        Column("name"),
        *_measure_columns(),
    ]
    rows = [[r.rank, r.comparable, r.id, r.code, r.name, *_measure_values(r)] for r in result.items]
    return _download(fmt, snapshot, store, f"league-{by.value}", columns, rows, delimiter)


@router.get(
    "/exports/cases",
    responses={
        200: {
            "description": "The cases as CSV (UTF-8 with BOM) or XLSX, streamed; times in the "
            "region's time zone",
            "content": {
                CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        },
        422: {"description": "A bad parameter, named in `errors[].loc`"},
    },
    response_class=StreamingResponse,
    summary="The case list as a download, with any of the list's filters",
    description="The same filters, sort and visibility as `GET /api/v1/cases`; every matching "
    "case, no paging. Roles that may not read personal data get no personal columns "
    "(applicant's name, e-mail, phone, author's handle, attachments).",
)
async def export_cases(
    principal: StatsReader,
    session: SessionDep,
    settings: SettingsDep,
    filters: Filters,
    request: Request,
    kind: CaseKind | None = None,
    sort: SortKey = "-created_at",
    fmt: Annotated[
        ExportFormat, Query(alias="format", description="csv or xlsx (json is refused)")
    ] = ExportFormat.csv,
    delimiter: DelimiterParam = ";",
):
    service = _service(session, settings, principal)
    filters.kind = kind
    columns, stmt = await service.case_export(filters, sort, fmt)
    return table_response(
        fmt.value,
        columns,
        stream_rows(request.app.state.sessionmaker, stmt),
        filename=_file_stem("cases", service.now, settings),
        sheet="cases",
        delimiter=delimiter,
        tz=settings.tz,
    )
