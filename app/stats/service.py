"""Statistics: the caller's reach, the period, then one aggregate statement (app.stats.queries);
Python only shapes the few rows the database returns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Select, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.auth.permissions import Role
from app.cases import access
from app.cases.models import Case
from app.cases.queries import CaseFilters, apply_filters
from app.core.config import Settings
from app.core.errors import Forbidden, Unprocessable
from app.core.types import utcnow
from app.privacy.service import record_export
from app.reference.models import Agency, Category, Territory
from app.stats import queries
from app.stats.case_export import export_statement
from app.stats.export import Column
from app.stats.schemas import (
    Dimension,
    ExportFormat,
    GroupKey,
    Interval,
    League,
    LeagueBy,
    LeagueRow,
    Measures,
    Period,
    Summary,
    SummaryRow,
    Timeseries,
    TimeseriesRow,
)

MAX_BUCKETS = 1000
DEFAULT_BUCKETS = {Interval.day: 30, Interval.week: 12, Interval.month: 12}
LEAGUE_RANKING = (
    "on_time_share descending, then close_median_working_hours ascending; rows with "
    "closed < min_volume are not comparable and unranked"
)

# Labels for the dimensions without a reference table (shown as `name`).
LABELS: dict[Dimension, dict[str, str]] = {
    Dimension.kind: {"incident": "Инцидент", "appeal": "Обращение"},
    Dimension.status: {
        "new": "Новое",
        "assigned": "Назначено",
        "in_progress": "В работе",
        "returned": "Возвращено",
        "closed": "Закрыто",
        "rejected": "Отклонено",
    },
    Dimension.source: {
        "vk": "ВКонтакте",
        "ok": "Одноклассники",
        "telegram": "Telegram",
        "dzen": "Дзен",
        "other": "Другая сеть",
        "web": "Сайт",
        "mobile_app": "Мобильное приложение",
        "widget": "Виджет",
        "email": "Электронная почта",
        "paper": "Бумага",
    },
}
_ID_DIMENSIONS = frozenset(
    {
        Dimension.category,
        Dimension.sector,
        Dimension.territory,
        Dimension.municipality,
        Dimension.agency,
    }
)


def query_error(param: str, message: str) -> Unprocessable:
    detail = f"{param}: {message}"
    return Unprocessable(
        detail, errors=[{"loc": ["query", param], "msg": detail, "type": "value_error"}]
    )


@dataclass
class StatsFilters:
    """What the caller asked for: the period as given and the case filters."""

    date_from: date | datetime | None = None
    date_to: date | datetime | None = None
    kind: str | None = None
    category_id: int | None = None
    territory_id: int | None = None
    agency_id: int | None = None
    source: str | None = None
    priority: str | None = None


@dataclass(frozen=True)
class ResolvedPeriod:
    start: datetime | None  # UTC, inclusive
    end: datetime | None  # UTC, exclusive


@dataclass(frozen=True)
class _Scope:
    cohort: queries.Cohort
    period: ResolvedPeriod


Report = Literal["summary", "timeseries", "league"]
# Part of every snapshot key: a release that changes an answer's shape or meaning bumps it, so
# stored answers of the previous release are never served after an upgrade.
ANSWER_VERSION = 1


def _instant_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _instant_of(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class StatsRequest:
    """A stats request after the caller's reach is applied (agency staff: their agency forced
    into `filters`) and the period resolved to UTC instants: everything the answer depends on,
    and nothing else. Its canonical JSON is stored with a snapshot and hashed into its key, so
    the same question asked by anyone with the same reach is one snapshot, and no two reaches
    ever share one."""

    report: Report
    period: ResolvedPeriod
    filters: StatsFilters  # date_from/date_to unused: the period holds them
    timezone: str
    group_by: tuple[Dimension, ...] = ()
    interval: Interval | None = None
    by: LeagueBy | None = None
    min_volume: int | None = None
    _key: str = field(default="", compare=False, repr=False)

    def params(self) -> dict[str, Any]:
        f = self.filters
        return {
            "version": ANSWER_VERSION,
            "report": self.report,
            "date_from": _instant_text(self.period.start),
            "date_to": _instant_text(self.period.end),
            "timezone": self.timezone,
            "filters": {
                "kind": f.kind,
                "category_id": f.category_id,
                "territory_id": f.territory_id,
                "agency_id": f.agency_id,
                "source": f.source,
                "priority": f.priority,
            },
            "group_by": [d.value for d in self.group_by],
            "interval": self.interval.value if self.interval else None,
            "by": self.by.value if self.by else None,
            "min_volume": self.min_volume,
        }

    @property
    def key(self) -> str:
        """sha256 of the canonical params (sorted keys, no spaces)."""
        if not self._key:
            canonical = orjson.dumps(self.params(), option=orjson.OPT_SORT_KEYS)
            object.__setattr__(self, "_key", hashlib.sha256(canonical).hexdigest())
        return self._key

    @classmethod
    def of_params(cls, params: dict[str, Any]) -> StatsRequest:
        """The request stored with a snapshot (the worker recomputes from it). ValueError when
        it is not one this release can answer (another version, a vocabulary since changed)."""
        if params.get("version") != ANSWER_VERSION:
            raise ValueError(f"snapshot params of version {params.get('version')!r}")
        try:
            f = params["filters"]
            return cls(
                report=params["report"],
                period=ResolvedPeriod(
                    _instant_of(params["date_from"]), _instant_of(params["date_to"])
                ),
                filters=StatsFilters(
                    kind=f["kind"],
                    category_id=f["category_id"],
                    territory_id=f["territory_id"],
                    agency_id=f["agency_id"],
                    source=f["source"],
                    priority=f["priority"],
                ),
                timezone=params["timezone"],
                group_by=tuple(Dimension(d) for d in params["group_by"]),
                interval=Interval(params["interval"]) if params["interval"] else None,
                by=LeagueBy(params["by"]) if params["by"] else None,
                min_volume=params["min_volume"],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"snapshot params without {exc}") from None


def _round_hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 4)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class StatsService:
    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal | None,
        *,
        now: datetime | None = None,
    ):
        self.session = session
        self.settings = settings
        self.principal = principal
        self.now = now or utcnow()  # the 'now' of overdue_now; fixed for a request

    @property
    def dialect(self) -> str:
        return self.session.bind.dialect.name

    # --- the period ---------------------------------------------------------------------------

    def _instant(self, value: date | datetime, *, end: bool) -> datetime:
        """A local date means that whole local day; a datetime is an instant (naive: local)."""
        tz = self.settings.tz
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)

    def _bound(self, value: date | datetime | None, param: str) -> datetime | None:
        if value is None:
            return None
        try:
            return self._instant(value, end=param == "date_to")
        except (OverflowError, ValueError):
            raise query_error(param, "out of the supported range of dates") from None

    def resolve_period(self, f: StatsFilters) -> ResolvedPeriod:
        start, end = self._bound(f.date_from, "date_from"), self._bound(f.date_to, "date_to")
        if start is not None and end is not None and end <= start:
            raise query_error("date_to", "the period ends before it starts")
        return ResolvedPeriod(start, end)

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.settings.tz).date()

    def _timeseries_period(self, f: StatsFilters, interval: Interval) -> ResolvedPeriod:
        """A timeseries needs both ends: by default up to today and DEFAULT_BUCKETS back."""
        if f.date_to is None:
            f = replace(f, date_to=self._local_date(self.now))
        if f.date_from is None:
            end = self._bound(f.date_to, "date_to")
            assert end is not None
            last = _truncate(self._local_date(end - timedelta(microseconds=1)), interval)
            f = replace(f, date_from=_step(last, interval, 1 - DEFAULT_BUCKETS[interval]))
        return self.resolve_period(f)

    def _buckets(self, period: ResolvedPeriod, interval: Interval) -> list[date]:
        assert period.start is not None and period.end is not None
        first = _truncate(self._local_date(period.start), interval)
        last = self._local_date(period.end - timedelta(microseconds=1))
        buckets = [first]
        while True:
            following = _step(buckets[-1], interval, 1)
            if following > last:
                return buckets
            buckets.append(following)
            if len(buckets) > MAX_BUCKETS:
                raise query_error(
                    "date_from",
                    f"the period has more than {MAX_BUCKETS} {interval.value}s; "
                    "shorten it or choose a longer interval",
                )

    def _period_out(self, period: ResolvedPeriod) -> Period:
        return Period(date_from=period.start, date_to=period.end, timezone=self.settings.timezone)

    # --- reach and filters ----------------------------------------------------------------------

    def _reach(self, f: StatsFilters) -> StatsFilters:
        """The filters within the caller's reach: agency staff get their agency forced. No
        database work, so a stored answer can be looked up by the result (StatsRequest.key)."""
        agency_id = f.agency_id
        if self.principal is None:
            raise Forbidden("Statistics are answered to a caller")
        if self.principal.role is Role.agency:
            # Agency staff see their own agency's figures only.
            if self.principal.agency_id is None:
                raise Forbidden("Your account is not bound to an agency")
            if agency_id is not None and agency_id != self.principal.agency_id:
                raise Forbidden("Agency staff may only see their own agency's figures")
            agency_id = self.principal.agency_id
        elif self.principal.role not in (Role.admin, Role.operator, Role.analyst):
            raise Forbidden("Statistics are for the regional centre's staff and agencies")
        return replace(f, date_from=None, date_to=None, agency_id=agency_id)

    async def _scope(self, f: StatsFilters, period: ResolvedPeriod) -> _Scope:
        """The cohort of filters already within reach (`_reach`), their references checked."""
        agency_id = f.agency_id
        category_ids = await self._category_ids(f.category_id)
        if f.territory_id is not None and await self.session.get(Territory, f.territory_id) is None:
            raise query_error("territory_id", f"no territory with id {f.territory_id}")
        if agency_id is not None and await self.session.get(Agency, agency_id) is None:
            raise query_error("agency_id", f"no agency with id {agency_id}")
        filters = CaseFilters(
            kind=f.kind,
            territory_id=f.territory_id,
            agency_id=agency_id,
            source=f.source,
            priority=f.priority,
            created_from=period.start,
            created_to=period.end,
        )
        return _Scope(queries.Cohort(filters, category_ids), period)

    async def _category_ids(self, category_id: int | None) -> list[int] | None:
        """The category and its subcategories (a sector counts with all of its own)."""
        if category_id is None:
            return None
        rows = await self.session.execute(
            select(Category.id).where(
                or_(Category.id == category_id, Category.parent_id == category_id)
            )
        )
        ids = list(rows.scalars())
        if category_id not in ids:
            raise query_error("category_id", f"no category with id {category_id}")
        return ids

    # --- running the statement ------------------------------------------------------------------

    async def _rows(
        self,
        scope: _Scope,
        dimensions: Sequence[Dimension],
        bucketing: queries.Bucketing | None = None,
    ) -> list[tuple[list[GroupKey], date | None, dict[str, Any]]]:
        stmt = queries.statement(
            scope.cohort, dimensions, now=self.now, dialect=self.dialect, bucketing=bucketing
        )
        result = await self.session.execute(stmt)
        out = []
        for row in result:
            m = row._mapping
            keys = [
                _key(d, m[f"k{i}"], m[f"code{i}"], m[f"name{i}"]) for i, d in enumerate(dimensions)
            ]
            bucket = m["bucket"] if bucketing is not None else None
            if isinstance(bucket, str):  # SQLite's date() answers text
                bucket = date.fromisoformat(bucket)
            out.append((keys, bucket, _measures(m, queries.percentiles(row, self.dialect))))
        return out

    # --- the three reports: resolved (no database), then answered ----------------------------

    def _request(self, report: Report, f: StatsFilters, period: ResolvedPeriod, **options):
        return StatsRequest(
            report=report,
            period=period,
            filters=self._reach(f),
            timezone=self.settings.timezone,
            **options,
        )

    def resolve_summary(self, f: StatsFilters, group_by: Sequence[Dimension]) -> StatsRequest:
        _check_dimensions(group_by, 2)
        return self._request("summary", f, self.resolve_period(f), group_by=tuple(group_by))

    def resolve_timeseries(
        self, f: StatsFilters, interval: Interval, group_by: Sequence[Dimension]
    ) -> StatsRequest:
        _check_dimensions(group_by, 1)
        try:
            period = self._timeseries_period(f, interval)
            self._buckets(period, interval)  # at most MAX_BUCKETS
        except (OverflowError, ValueError):  # buckets before year 1 or after 9999
            raise query_error("date_from", "out of the supported range of dates") from None
        return self._request("timeseries", f, period, group_by=tuple(group_by), interval=interval)

    def resolve_league(self, f: StatsFilters, by: LeagueBy, min_volume: int) -> StatsRequest:
        return self._request("league", f, self.resolve_period(f), by=by, min_volume=min_volume)

    async def answer(self, request: StatsRequest) -> Summary | Timeseries | League:
        """The figures of a resolved request as of `self.now` (its reach is already applied)."""
        scope = await self._scope(request.filters, request.period)
        if request.report == "summary":
            return await self._summary(scope, request.group_by)
        if request.report == "timeseries":
            assert request.interval is not None
            return await self._timeseries(scope, request.interval, request.group_by)
        assert request.by is not None and request.min_volume is not None
        return await self._league(scope, request.by, request.min_volume)

    async def summary(self, f: StatsFilters, group_by: Sequence[Dimension]) -> Summary:
        return await self.answer(self.resolve_summary(f, group_by))

    async def timeseries(
        self, f: StatsFilters, interval: Interval, group_by: Sequence[Dimension]
    ) -> Timeseries:
        return await self.answer(self.resolve_timeseries(f, interval, group_by))

    async def league(self, f: StatsFilters, by: LeagueBy, min_volume: int) -> League:
        return await self.answer(self.resolve_league(f, by, min_volume))

    async def _summary(self, scope: _Scope, group_by: Sequence[Dimension]) -> Summary:
        rows = await self._rows(scope, group_by)
        items = [SummaryRow(keys=keys, **measures) for keys, _, measures in rows]
        items.sort(key=lambda r: _sort_key(r.keys))
        return Summary(
            period=self._period_out(scope.period),
            group_by=list(group_by),
            generated_at=self.now,
            items=items,
        )

    async def _timeseries(
        self, scope: _Scope, interval: Interval, group_by: Sequence[Dimension]
    ) -> Timeseries:
        period = scope.period
        buckets = self._buckets(period, interval)
        assert period.start is not None
        bucketing = queries.Bucketing(
            interval=interval,
            timezone=self.settings.timezone,
            utc_offset=period.start.astimezone(self.settings.tz).utcoffset() or timedelta(),
        )
        rows = await self._rows(scope, group_by, bucketing)
        found: dict[tuple, tuple[list[GroupKey], dict[date, dict[str, Any]]]] = {}
        for keys, bucket, measures in rows:
            group = tuple((k.dimension, k.id, k.code) for k in keys)
            found.setdefault(group, (keys, {}))[1][bucket] = measures
        if not group_by and not found:
            found[()] = ([], {})
        zero = _zero_measures()
        items = [
            TimeseriesRow(bucket=bucket, keys=keys, **by_bucket.get(bucket, zero))
            for keys, by_bucket in sorted(found.values(), key=lambda g: _sort_key(g[0]))
            for bucket in buckets
        ]
        return Timeseries(
            period=self._period_out(period),
            interval=interval,
            group_by=list(group_by),
            generated_at=self.now,
            items=items,
        )

    async def _league(self, scope: _Scope, by: LeagueBy, min_volume: int) -> League:
        dimension = Dimension.agency if by is LeagueBy.agency else Dimension.municipality
        rows = [
            LeagueRow(
                rank=None,
                comparable=measures["closed"] >= min_volume,
                id=keys[0].id,
                code=keys[0].code,
                name=keys[0].name,
                **measures,
            )
            for keys, _, measures in await self._rows(scope, [dimension])
            if keys[0].id is not None  # cases without an agency / outside any municipality
        ]
        ranked = sorted((r for r in rows if r.comparable), key=_league_order)
        for position, row in enumerate(ranked, start=1):
            previous = ranked[position - 2] if position > 1 else None
            tied = previous is not None and _league_score(previous) == _league_score(row)
            row.rank = previous.rank if tied else position
        unranked = sorted((r for r in rows if not r.comparable), key=lambda r: (r.name or "", r.id))
        return League(
            by=by,
            min_volume=min_volume,
            period=self._period_out(scope.period),
            generated_at=self.now,
            ranking=LEAGUE_RANKING,
            items=ranked + unranked,
        )

    # --- the case list as a download ------------------------------------------------------------

    async def case_export(
        self, filters: CaseFilters, sort: str, fmt: ExportFormat
    ) -> tuple[list[Column], Select]:
        """The columns and statement of a case export (run later, by the streaming body)."""
        if fmt is ExportFormat.json:
            raise query_error("format", "the case export is csv or xlsx; the list is JSON")
        category_ids = await self._category_ids(filters.category_id)
        # 152-ФЗ: a person downloading personal data is recorded, case by case, in this
        # request's transaction (one INSERT ... SELECT over the same filters and reach).
        exported = select(Case.id).where(access.visible(self.principal))
        exported = apply_filters(exported, filters, category_ids, self.dialect)
        await record_export(self.session, self.principal, exported)
        return export_statement(
            self.principal, filters, category_ids, sort, now=self.now, dialect=self.dialect
        )


# --- helpers -------------------------------------------------------------------------------------


def _check_dimensions(group_by: Sequence[Dimension], most: int) -> None:
    if len(group_by) > most:
        raise query_error("group_by", f"at most {most} dimension(s) here")
    if len(set(group_by)) != len(group_by):
        raise query_error("group_by", "a dimension is named twice")


def _key(dimension: Dimension, value: Any, code: str | None, name: str | None) -> GroupKey:
    if dimension in _ID_DIMENSIONS:
        return GroupKey(dimension=dimension, id=value, code=code, name=name)
    return GroupKey(
        dimension=dimension,
        id=None,
        code=value,
        name=LABELS.get(dimension, {}).get(value) if value is not None else None,
    )


def _sort_key(keys: Sequence[GroupKey]) -> tuple:
    # Named rows alphabetically, rows without a key (no category, …) last.
    return tuple((k.id is None and k.code is None, k.name or k.code or "", k.id or 0) for k in keys)


def _measures(m: Any, seconds: dict[str, float | None]) -> dict[str, Any]:
    counts = {name: int(m[name] or 0) for name in queries.COUNTS}
    resolved_ever = counts.pop("resolved_ever")
    out: dict[str, Any] = {
        **counts,
        "on_time_share": _share(counts["closed_on_time"], counts["closed"]),
        "reopen_rate": _share(counts["reopened"], resolved_ever),
    }
    for duration in ("first_response", "close"):
        for q in ("median", "p90"):
            out[f"{duration}_{q}_hours"] = _round_hours(seconds[f"{duration}_{q}"])
            out[f"{duration}_{q}_working_hours"] = _round_hours(seconds[f"{duration}_working_{q}"])
    return out


def _zero_measures() -> dict[str, Any]:
    return {
        name: (0 if Measures.model_fields[name].annotation is int else None)
        for name in Measures.model_fields
    }


def _league_score(row: LeagueRow) -> tuple:
    median = row.close_median_working_hours
    return (-(row.on_time_share or 0.0), median is None, median or 0.0)


def _league_order(row: LeagueRow) -> tuple:
    return (*_league_score(row), row.name or "", row.id)


def _truncate(day: date, interval: Interval) -> date:
    if interval is Interval.week:
        return day - timedelta(days=day.weekday())
    if interval is Interval.month:
        return day.replace(day=1)
    return day


def _step(day: date, interval: Interval, count: int) -> date:
    """`count` buckets later (or earlier, if negative) than the bucket starting on `day`."""
    if interval is Interval.day:
        return day + timedelta(days=count)
    if interval is Interval.week:
        return day + timedelta(weeks=count)
    months = day.year * 12 + day.month - 1 + count
    return date(months // 12, months % 12 + 1, 1)
