"""Synthetic but realistic cases for the benchmarks, bulk-loaded into PostgreSQL with COPY.

    python -m bench.generate --cases 1000000 [--database-url URL] [--seed 1] [--jobs 2]

Needs a migrated database with the demo region loaded (`python -m app migrate` and
`python -m app seed-demo`): categories, territories, agencies, routing rules, deadline policies,
the demo operator and the integration clients are read from it. Appends N cases (with their
events and case_agency rows) after whatever is there; never drops or alters anything.

What the cases look like:
- incidents (27 %, as in Kuban: 75k incidents to 200k appeals) from VK, Telegram, OK, Dzen;
  appeals from the platform's channels under the ПОС (85 %) or 59-ФЗ regime, with applicants;
- territories weighted by population (Krasnodar gets the most), sectors by how often people
  write about them, subcategories within a sector;
- three years of registration times, denser lately and in the daytime;
- each case lives through the workflow (routing or triage, accept, interim answer, close,
  returns, reassignments, rejections, reopenings) with random delays; the life is cut at "now",
  so recent cases are open and old ones closed, and a few stall (old, open, overdue). Every step
  is a case_event row, the case's status is its last event's, deadlines follow the default
  policies (9 or 4 working hours for incidents, 7 working days after an interim answer; 8 or
  30 days for appeals) on a Monday-to-Friday 9-18 calendar without holidays (an approximation).

Columns are read from information_schema at run time: a nullable column added later is left
to its default, known optional ones (the statistics durations, case_agency.delivered_at) are
filled when present, and a new NOT NULL column without a default stops the run with a message.
"""

# Reproducible synthetic data, not secrets: the standard PRNG is the right tool here.
# ruff: noqa: S311

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import time
from bisect import bisect
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from operator import itemgetter
from typing import Any

import asyncpg

from app.reference import demo_data
from bench import texts

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/regiondesk_bench"
YEARS = 3
INCIDENT_SHARE = 0.27
FZ59_SHARE = 0.15
HOUR = 3600.0
DAY = 86400.0

# How often people write about each sector (the eight of the centre, amenities, other).
SECTOR_WEIGHTS = {
    "housing_utilities": 24,
    "roads": 15,
    "public_amenities": 14,
    "healthcare": 10,
    "solid_waste": 8,
    "energy": 7,
    "education": 6,
    "transport": 6,
    "social_protection": 5,
    "other": 5,
}
# Where the operator sends a case no routing rule takes: the sector's regional ministry, or
# the municipality (None) for the municipal sectors.
SECTOR_MINISTRY = {
    "healthcare": "minzdrav",
    "education": "minobr",
    "housing_utilities": "mintek",
    "energy": "mintek",
    "solid_waste": "mintek",
    "roads": "mintrans",
    "transport": "mintrans",
    "social_protection": "mintrud",
    "public_amenities": None,
    "other": None,
}
NETWORKS = (("vk", 55), ("telegram", 20), ("ok", 15), ("dzen", 5), ("other", 5))
CHANNELS_POS = (("web", 45), ("mobile_app", 40), ("widget", 15))
CHANNELS_FZ59 = (("web", 40), ("email", 35), ("paper", 25))
RESOLUTIONS = (("solved", 55), ("explained", 30), ("planned", 10), ("refused", 5))
REJECT_REASONS = (("spam", 30), ("duplicate", 30), ("not_a_complaint", 30), ("outside_region", 10))
RETURN_REASONS = ("not_our_competence", "wrong_territory", "not_enough_information")
REOPEN_REASONS = ("poor_answer", "citizen_dissatisfied", "new_information")
SYSTEM = ("system:routing", "Маршрутизация", "system")
NO_RULE = "No routing rule matched; left for triage"

EVENT_COLUMNS = (
    "case_id",
    "action",
    "actor",
    "actor_name",
    "actor_role",
    "from_status",
    "to_status",
    "from_agency_id",
    "to_agency_id",
    "reason",
    "comment",
    "changes",
    "data",
    "created_at",
)
CASE_AGENCY_COLUMNS = ("case_id", "agency_id")
# Columns other engineers add later that we know how to fill when they exist.
OPTIONAL_CASE_COLUMNS = (
    "first_response_seconds",
    "first_response_working_seconds",
    "close_seconds",
    "close_working_seconds",
)
OPTIONAL_CASE_AGENCY_COLUMNS = ("delivered_at", "case_created_at")
# What a generated link holds, in this order (a link's tuple).
_LINK_FIELDS = (*CASE_AGENCY_COLUMNS, *OPTIONAL_CASE_AGENCY_COLUMNS)
# Filled by the database (identity/serial ids).
DATABASE_FILLED = {"case_event": {"id"}, "case_agency": set(), "case_file": set()}


class GeneratorError(Exception):
    """A problem with the target database the operator can fix."""


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes postgresql:// only; accept the SQLAlchemy spellings too."""
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


# --------------------------------------------------------------------------- working time

# Region time (Europe/Moscow, UTC+3 all year since 2014); weeks counted from Monday 1970-01-05.
_OFFSET = 3 * HOUR
_ORIGIN = 4 * DAY
_WEEK = 7 * DAY
_START, _END = 9 * HOUR, 18 * HOUR
_WORKDAY = _END - _START
_WORKWEEK = 5 * _WORKDAY


def working_seconds_at(ts: float) -> float:
    """Working seconds from the origin to ts (Mon-Fri 9-18 local time, no holidays)."""
    x = ts + _OFFSET - _ORIGIN
    week, rest = divmod(x, _WEEK)
    day, sod = divmod(rest, DAY)
    worked = week * _WORKWEEK + min(day, 5) * _WORKDAY
    if day < 5:
        worked += min(max(sod, _START), _END) - _START
    return worked


def add_working_seconds(ts: float, seconds: float) -> float:
    week, rest = divmod(working_seconds_at(ts) + seconds, _WORKWEEK)
    day, within = divmod(rest, _WORKDAY)
    return week * _WEEK + day * DAY + _START + within + _ORIGIN - _OFFSET


def working_between(start: float, end: float) -> int:
    return int(working_seconds_at(end) - working_seconds_at(start))


# --------------------------------------------------------------------------- reference data


@dataclass
class Route:
    rule_id: int | None
    agency_id: int | None
    reason: str


@dataclass
class Reference:
    """The demo region as the database has it, shaped for fast random picks."""

    sectors: list[tuple[int, str, list[int]]]  # (sector id, code, subcategory ids)
    sector_cum: list[float]
    territories: list[tuple[int | None, str]]  # (id, name); None = no territory given
    territory_cum: list[float]
    routes: dict[tuple[int, int | None], Route]
    fallback: dict[tuple[int, int | None], int]  # operator's choice when no rule routes
    alternatives: dict[int, list[int]]  # agency -> where a returned case goes instead
    missing_category: int | None
    missing_route: tuple[int | None, list[int], str | None, str]  # rule, notify, priority, why
    policies: dict[tuple[str, str | None, str | None], int]
    incident_submitter: tuple[str, str, str, str]  # source_system, subject, name, role
    pos_submitter: tuple[str, str, str, str]
    operator: tuple[str, str, str]
    agency_actors: dict[int, tuple[str, str, str]]
    officials: list[str] = field(default_factory=list)

    def policy(self, kind: str, regime: str | None, priority: str) -> int | None:
        policies = self.policies
        return policies.get((kind, regime, priority)) or policies.get((kind, regime, None))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _rule_applies(rule, sector_id: int, category_ids: set[int], territory_id: int | None) -> bool:
    cats = set(_json(rule["category_ids"]) or [])
    terrs = _json(rule["territory_ids"]) or []
    if cats and sector_id not in cats and not (cats & category_ids):
        return False
    return not terrs or territory_id in terrs


async def load_reference(conn: asyncpg.Connection) -> Reference:
    categories = await conn.fetch("SELECT id, code, parent_id FROM category WHERE is_active")
    territories = await conn.fetch("SELECT id, code, name, kind FROM territory WHERE is_active")
    agencies = await conn.fetch("SELECT id, code, name, kind, territory_id FROM agency")
    if not categories or not territories or not agencies:
        raise GeneratorError(
            "no reference data: load the demo region first (python -m app seed-demo)"
        )
    by_code = {c["code"]: c for c in categories}
    sectors = []
    weights = []
    for code, weight in SECTOR_WEIGHTS.items():
        if code in by_code:
            sid = by_code[code]["id"]
            subs = [c["id"] for c in categories if c["parent_id"] == sid]
            sectors.append((sid, code, subs))
            weights.append(weight)
    if not sectors:
        raise GeneratorError("none of the demo sectors exist: run python -m app seed-demo")

    population = {t.code: t.population for t in demo_data.TERRITORIES}
    terr_list: list[tuple[int | None, str]] = [(None, "")]
    terr_weights = [2.0]
    for t in territories:
        terr_list.append((t["id"], t["name"]))
        if t["kind"] == "region":
            terr_weights.append(3.0)
        else:
            terr_weights.append(95.0 * population.get(t["code"], 50_000) / 5_850_000)

    agency_by_code = {a["code"]: a for a in agencies}
    adm_of_territory = {
        a["territory_id"]: a["id"] for a in agencies if a["kind"] == "municipal_administration"
    }
    cur = agency_by_code.get("cur")
    default_agency = (cur or agencies[0])["id"]

    rules = await conn.fetch("SELECT * FROM routing_rule WHERE enabled ORDER BY position, id")
    plain_rules = [
        r
        for r in rules
        if r["agency_id"] is not None
        and not _json(r["keywords"])
        and not _json(r["sources"])
        and r["missing_person"] is None
        and r["important"] is None
    ]
    routes: dict[tuple[int, int | None], Route] = {}
    fallback: dict[tuple[int, int | None], int] = {}
    for sid, code, subs in sectors:
        subset = set(subs)
        for tid, _name in terr_list:
            for r in plain_rules:
                kinds = _json(r["kinds"]) or []
                if kinds and set(kinds) != {"incident", "appeal"}:
                    continue
                if _rule_applies(r, sid, subset, tid):
                    why = f"Rule {r['id']} «{r['name']}»: category, territory"
                    routes[(sid, tid)] = Route(r["id"], r["agency_id"], why)
                    break
            ministry = agency_by_code.get(SECTOR_MINISTRY.get(code) or "")
            fallback[(sid, tid)] = (
                ministry["id"] if ministry else adm_of_territory.get(tid, default_agency)
            )
    regional = [a["id"] for a in agencies if a["kind"] in ("regional_ministry", "control_centre")]
    alternatives = {
        a["id"]: [x for x in regional if x != a["id"]] or [default_agency] for a in agencies
    }

    missing = next((r for r in rules if r["missing_person"] is True), None)
    missing_route = (
        (
            missing["id"],
            list(_json(missing["notify_agency_ids"]) or []),
            missing["priority"],
            f"Rule {missing['id']} «{missing['name']}»: missing person",
        )
        if missing
        else (None, [], "urgent", NO_RULE)
    )
    missing_cat = by_code.get("other.missing_persons")

    policies: dict[tuple[str, str | None, str | None], int] = {}
    for p in await conn.fetch(
        "SELECT id, kind, legal_regime, priority FROM deadline_policy "
        "WHERE is_active AND category_id IS NULL ORDER BY id"
    ):
        policies.setdefault((p["kind"], p["legal_regime"], p["priority"]), p["id"])

    clients = {
        c["source_system"]: c
        for c in await conn.fetch("SELECT id, client_id, source_system FROM api_client")
    }
    users = await conn.fetch("SELECT id, username, role, agency_id FROM user_account")

    def submitter(source: str) -> tuple[str, str, str, str]:
        c = clients.get(source)
        if c is None:
            return source, f"client:{source}", source, "integration"
        return source, f"client:{c['id']}", c["client_id"], "integration"

    op = next((u for u in users if u["role"] == "operator"), None)
    operator = (
        (f"user:{op['id']}", op["username"], "operator")
        if op
        else ("user:0", "operator", "operator")
    )
    agency_actors = {
        a["id"]: (f"staff:{a['code']}", f"Сотрудник: {a['name'][:150]}", "agency") for a in agencies
    }
    for u in users:
        if u["role"] == "agency" and u["agency_id"] is not None:
            agency_actors[u["agency_id"]] = (f"user:{u['id']}", u["username"], "agency")

    rng = random.Random(7)
    officials = [
        f"{rng.choice(texts.SURNAMES_M)} {rng.choice(texts.NAMES_M)[0]}. "
        f"{rng.choice(texts.PATRONYMICS)[0]}., начальник отдела"
        for _ in range(200)
    ]
    return Reference(
        sectors=sectors,
        sector_cum=list(accumulate(weights)),
        territories=terr_list,
        territory_cum=list(accumulate(terr_weights)),
        routes=routes,
        fallback=fallback,
        alternatives=alternatives,
        missing_category=missing_cat["id"] if missing_cat else None,
        missing_route=missing_route,
        policies=policies,
        incident_submitter=submitter("incident-management"),
        pos_submitter=submitter("pos"),
        operator=operator,
        agency_actors=agency_actors,
        officials=officials,
    )


# --------------------------------------------------------------------------- one case's life


def _pick(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p[0] for p in pairs], [p[1] for p in pairs])[0]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class _Life:
    """One case walking through the workflow; every step is an event, none after `now`."""

    __slots__ = (
        "agencies",
        "agency",
        "assigned_at",
        "case",
        "closed_at",
        "due",
        "events",
        "first_response",
        "now",
        "policy",
        "status",
        "t",
    )

    def __init__(self, case: dict, t: float, now: float):
        self.case, self.t, self.now = case, t, now
        self.events: list[tuple] = []
        self.status = "new"
        self.agency: int | None = None
        self.agencies: dict[int, float | None] = {}
        self.assigned_at = self.due = self.first_response = self.closed_at = None
        self.policy: int | None = None

    def wait(self, rng: random.Random, mean: float) -> bool:
        self.t += rng.expovariate(1.0 / mean)
        return self.t <= self.now

    def emit(self, action, actor, to_status, reason=None, comment=None, changes=None, data=None):
        self.events.append(
            (
                action,
                *actor,
                self.status if action not in ("create", "notify") else None,
                to_status,
                self.agency if action != "create" else None,
                None,  # to_agency, set below
                reason,
                comment,
                changes,
                data,
                self.t,
            )
        )
        if to_status is not None:
            self.status = to_status

    def set_to_agency(self, agency_id: int | None) -> None:
        ev = self.events[-1]
        self.events[-1] = (*ev[:7], agency_id, *ev[8:])

    def respond(self) -> None:
        if self.first_response is None:
            self.first_response = self.t


@dataclass
class Chunk:
    cases: list[dict]
    events: list[tuple]
    case_agencies: list[tuple]


class CaseGenerator:
    """Cases `first_id` to `first_id + cases - 1`, created over the last YEARS in id order, as
    a live system numbers them on arrival: the table holds them in that order too, so the open
    cases, the recent ones, lie in its newest pages, as they do in production (with times drawn
    at random per case, they were spread over the whole table, and a 10M queue page read its
    50 rows from 18 GB)."""

    def __init__(self, ref: Reference, now: float, seed: int, first_id: int, cases: int):
        self.ref = ref
        self.now = now
        self.seed = seed
        self.first_id, self.cases = first_id, max(1, cases)
        self.span = YEARS * 365 * DAY
        # Daytime-heavy hour-of-day profile (local time).
        hour_weights = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 9, 9, 9, 8, 8, 8, 7, 6, 4, 3, 2]
        self.hour_cum = list(accumulate(hour_weights))

    # --- picks ----------------------------------------------------------------------------

    def _created(self, rng: random.Random, case_id: int) -> float:
        """When a case was created: denser lately (volumes grow), daytime-heavy, never in the
        future; later for a later id. The case's place among the generated ones, jittered
        within its own share (so uniform over them all), is mapped through one increasing
        function: to its age in days (the density), and what is left of that day to its
        time of day (the hourly profile)."""
        u = (case_id - self.first_id + rng.random()) / self.cases
        age = self.span * (1.0 - u**0.8) / DAY
        age_days = int(age)
        within = (1.0 - (age - age_days)) * self.hour_cum[-1]  # later in the day as u grows
        hour = min(bisect(self.hour_cum, within), 23)
        before = self.hour_cum[hour - 1] if hour else 0
        into_hour = (within - before) / (self.hour_cum[hour] - before)
        local_midnight = (self.now + _OFFSET) // DAY * DAY - _OFFSET
        ts = local_midnight - age_days * DAY + (hour + into_hour) * HOUR
        return min(ts, self.now - 600 * (1.0 - u))

    def _name(self, rng: random.Random) -> str:
        t = texts
        if rng.random() < 0.55:
            return (
                f"{rng.choice(t.SURNAMES_M)}а {rng.choice(t.NAMES_F)} {rng.choice(t.PATRONYMICS)}на"
            )
        return f"{rng.choice(t.SURNAMES_M)} {rng.choice(t.NAMES_M)} {rng.choice(t.PATRONYMICS)}ич"

    def _text(self, rng: random.Random, sector: str, place: str, incident: bool, missing: bool):
        t = texts
        pool = t.MISSING_PERSON if missing else t.PROBLEMS.get(sector, t.PROBLEMS["other"])
        where = f"по ул. {rng.choice(t.STREETS)}, {rng.randint(1, 150)}" if place else "у нас"
        parts = [
            rng.choice(t.OPENERS) if not incident or rng.random() < 0.3 else "",
            rng.choice(pool).replace("{где}", where) + rng.choice((".", "!", "!!", ".")),
        ]
        n = rng.choices((0, 1, 2, 3, 5, 8), (30, 30, 18, 12, 7, 3))[0]
        if not incident:
            n += rng.choice((0, 1, 2))
        for _ in range(n):
            parts.append(rng.choice(t.DETAILS).replace("{когда}", rng.choice(t.WHEN)))
        if n and rng.random() < 0.3:
            parts.append(rng.choice(pool).replace("{где}", where) + ".")
        parts.append(rng.choice(t.CLOSERS))
        if incident:
            parts.append(rng.choice(t.HASHTAGS))
        return " ".join(p for p in parts if p)

    # --- one case -------------------------------------------------------------------------

    def case(self, rng: random.Random, case_id: int, chunk_first_id: int) -> tuple[dict, _Life]:
        ref, now = self.ref, self.now
        created = self._created(rng, case_id)
        incident = rng.random() < INCIDENT_SHARE
        tid, tname = ref.territories[
            bisect(ref.territory_cum, rng.random() * ref.territory_cum[-1])
        ]
        sid, scode, subs = ref.sectors[bisect(ref.sector_cum, rng.random() * ref.sector_cum[-1])]
        missing = incident and ref.missing_category is not None and rng.random() < 0.004
        if missing:
            category = ref.missing_category
            scode = "other"
            sid = next((s for s, code, _ in ref.sectors if code == "other"), sid)
        else:
            category = rng.choice(subs) if subs and rng.random() < 0.85 else sid
        important = incident and not missing and rng.random() < 0.07
        kind = "incident" if incident else "appeal"
        year = datetime.fromtimestamp(created, UTC).year
        if incident:
            network = _pick(rng, NETWORKS)
            source_system, subject, sname, srole = ref.incident_submitter
            post = f"{rng.randint(1, 99_999_999)}_{case_id}"
            external_id = f"{network}-{post}"
            regime = channel = None
            post_url = {
                "vk": f"https://vk.com/wall-{post}",
                "telegram": f"https://t.me/kuban_news_{rng.randint(1, 400)}/{case_id}",
                "ok": f"https://ok.ru/group/{rng.randint(10**10, 10**11)}/topic/{case_id}",
                "dzen": f"https://dzen.ru/a/{case_id:x}{rng.randint(0, 9999):04d}",
                "other": f"https://forum.kuban.example/t/{case_id}",
            }[network]
            words = texts.HANDLE_WORDS
            handle = f"{rng.choice(words)}_{rng.choice(words)}{rng.randint(1, 999)}"
            priority = "urgent" if missing else "high" if important else "normal"
            number = f"INC-{year}-{case_id:06d}"
        else:
            network = post_url = handle = None
            regime = "fz59" if rng.random() < FZ59_SHARE else "pos"
            channel = _pick(rng, CHANNELS_FZ59 if regime == "fz59" else CHANNELS_POS)
            if regime == "pos":
                source_system, subject, sname, srole = ref.pos_submitter
                external_id = f"POS-{year}-{case_id:09d}"
            else:
                source_system = "operator"
                subject, sname, srole = ref.operator
                external_id = f"59FZ-{year}-{case_id:09d}"
            priority = rng.choices(("normal", "high", "low"), (90, 6, 4))[0]
            number = f"APL-{year}-{case_id:06d}"
        text = self._text(rng, scode, tname, incident, missing)
        has_address = tid is not None and rng.random() < (0.35 if incident else 0.8)
        address = (
            f"{tname}, ул. {rng.choice(texts.STREETS)}, д. {rng.randint(1, 150)}"
            if has_address
            else None
        )
        lat = lon = None
        if has_address and rng.random() < 0.5:
            lat = round(44.0 + (tid * 0.037) % 2.5 + rng.random() * 0.05, 6)
            lon = round(37.5 + (tid * 0.091) % 3.5 + rng.random() * 0.05, 6)

        case: dict[str, Any] = {
            "id": case_id,
            "number": number,
            "kind": kind,
            "priority": priority,
            "category_id": category,
            "territory_id": tid,
            "source_system": source_system,
            "external_id": external_id,
            "submitted_by": subject,
            "text": text,
            "address": address,
            "latitude": lat,
            "longitude": lon,
            "network": network,
            "post_url": post_url,
            "author_handle": handle,
            "published_at": (
                datetime.fromtimestamp(created - rng.expovariate(1 / (2 * HOUR)), UTC)
                if incident
                else None
            ),
            "reach": int(rng.lognormvariate(7, 1.5)) if incident else None,
            "missing_person": missing,
            "important": important,
            "channel": channel,
            "legal_regime": regime,
            "applicant_name": None if incident else self._name(rng),
            "applicant_email": (
                f"citizen{case_id}@mail.example" if not incident and rng.random() < 0.7 else None
            ),
            "applicant_phone": (
                f"+7918{rng.randint(0, 9_999_999):07d}"
                if not incident and rng.random() < 0.6
                else None
            ),
            "attachment_urls": (
                json.dumps([f"https://files.pos.example/{case_id}/{i}.jpg" for i in range(k)])
                if not incident and (k := rng.choices((0, 1, 2, 3), (70, 18, 8, 4))[0])
                else None
            ),
            "duplicate_of_id": None,
            "interim_answer": None,
            "interim_planned_date": None,
            "final_answer": None,
            "resolution": None,
            "responsible_official": None,
            "reopen_count": 0,
        }
        life = _Life(case, created, now)
        life.emit("create", (subject, sname, srole), "new")
        self._live(rng, life, sid, tid, kind, regime, missing, case_id, chunk_first_id)
        return case, life

    def _assign(self, life: _Life, rng, actor, agency, action="assign", reason=None, comment=None):
        case = life.case
        life.agencies.setdefault(agency, None)
        policy = self.ref.policy(case["kind"], case["legal_regime"], case["priority"])
        if case["kind"] == "incident":
            hours = 4 if case["priority"] in ("high", "urgent") else 9
            due = add_working_seconds(life.t, hours * HOUR)
        else:
            days = 30 if case["legal_regime"] == "fz59" else 8
            due = life.case["_created"] + days * DAY
        life.due, life.policy, life.assigned_at = due, policy, life.t
        life.emit(action, actor, "assigned", reason, comment, None, f'{{"due_at": "{_iso(due)}"}}')
        life.set_to_agency(agency)
        life.agency = agency

    def _live(self, rng, life: _Life, sid, tid, kind, regime, missing, case_id, chunk_first_id):
        ref = self.ref
        case = life.case
        case["_created"] = life.t
        operator = ref.operator
        incident = kind == "incident"
        route = ref.routes.get((sid, tid))
        if missing:
            rule_id, notify, prio, why = ref.missing_route
            if notify:
                life.t += 0.01
                life.emit(
                    "notify", SYSTEM, None, None, why, None, json.dumps({"agency_ids": notify})
                )
                for a in notify:
                    life.agencies[a] = life.t + 2.0
            if prio:
                case["priority"] = prio
            case["routing_rule_id"], case["routing_reason"] = rule_id, why
        else:
            case["routing_rule_id"] = route.rule_id if route else None
            case["routing_reason"] = route.reason if route else NO_RULE
        # The slow lane: a case that stalls somewhere waits ~100x longer (old, open, overdue).
        stall_step = rng.randrange(4) if rng.random() < 0.06 else -1

        def wait(step: int, mean: float) -> bool:
            return life.wait(rng, mean * (100 if step == stall_step else 1))

        if route is not None and not missing:
            life.t += 0.02
            self._assign(life, rng, SYSTEM, route.agency_id, reason="routing", comment=route.reason)
        else:
            if not wait(0, 6 * HOUR):
                return
            if rng.random() < 0.10:
                self._reject(life, rng, case_id, chunk_first_id)
                return
            self._assign(life, rng, operator, ref.fallback[(sid, tid)])

        accept_mean = 3 * HOUR if incident else DAY
        close_mean = 6 * HOUR if incident else (15 * DAY if regime == "fz59" else 4 * DAY)
        interim_p = 0.2 if incident else (0.35 if regime == "fz59" else 0.15)
        while True:
            if not wait(1, accept_mean):
                return
            agency_actor = ref.agency_actors.get(life.agency, operator)
            r = rng.random()
            returned = r < 0.05
            if not returned and r >= 0.10:
                life.emit("accept", agency_actor, "in_progress")
                life.set_to_agency(life.agency)
                if rng.random() < interim_p:
                    if not life.wait(rng, close_mean / 3):
                        return
                    self._interim(life, rng, agency_actor)
                if not wait(2, close_mean):
                    return
                returned = rng.random() < 0.04
            if returned:
                life.respond()
                life.emit(
                    "return",
                    agency_actor,
                    "returned",
                    rng.choice(RETURN_REASONS),
                    rng.choice(texts.RETURN_COMMENTS),
                )
                life.set_to_agency(life.agency)
                if not wait(3, 4 * HOUR):
                    return
                if rng.random() < 0.2:
                    self._reject(life, rng, case_id, chunk_first_id)
                    return
                self._assign(life, rng, operator, rng.choice(ref.alternatives[life.agency]))
                continue
            self._close(life, rng, agency_actor)
            if case["reopen_count"] >= 2 or rng.random() >= (0.2 if case["reopen_count"] else 0.05):
                return
            if not life.wait(rng, 3 * DAY):
                return
            case["reopen_count"] += 1
            life.closed_at = None
            self._assign(
                life,
                rng,
                operator,
                life.agency,
                action="reopen",
                reason=rng.choice(REOPEN_REASONS),
            )

    def _interim(self, life: _Life, rng, actor) -> None:
        case = life.case
        life.respond()
        text = rng.choice(texts.INTERIM_ANSWERS)
        planned = datetime.fromtimestamp(life.t + rng.randint(3, 40) * DAY, UTC).date().isoformat()
        case["interim_answer"], case["interim_planned_date"] = text, planned
        changes = None
        if case["kind"] == "incident" and life.due is not None:
            new_due = add_working_seconds(life.t, 7 * _WORKDAY)
            changes = json.dumps({"due_at": {"old": _iso(life.due), "new": _iso(new_due)}})
            life.due = new_due
        life.emit(
            "interim-answer",
            actor,
            "in_progress",
            None,
            text,
            changes,
            f'{{"planned_date": "{planned}"}}',
        )
        life.set_to_agency(life.agency)

    def _close(self, life: _Life, rng, actor) -> None:
        case = life.case
        life.respond()
        resolution = _pick(rng, RESOLUTIONS)
        answer = rng.choice(texts.FINAL_ANSWERS)
        official = rng.choice(self.ref.officials)
        case["final_answer"], case["resolution"] = answer, resolution
        case["responsible_official"] = official
        life.closed_at = life.t
        life.emit(
            "close",
            actor,
            "closed",
            resolution,
            answer,
            None,
            json.dumps({"responsible_official": official}, ensure_ascii=False),
        )
        life.set_to_agency(life.agency)

    def _reject(self, life: _Life, rng, case_id: int, chunk_first_id: int) -> None:
        reason = _pick(rng, REJECT_REASONS)
        data = None
        if reason == "duplicate":
            if case_id - chunk_first_id >= 1:  # the original is in the same COPY (FKs)
                original = rng.randint(max(chunk_first_id, case_id - 50), case_id - 1)
                life.case["duplicate_of_id"] = original
                data = f'{{"duplicate_of": {original}}}'
            else:
                reason = "not_a_complaint"
        life.emit("reject", self.ref.operator, "rejected", reason, None, None, data)
        life.set_to_agency(life.agency)

    # --- a chunk --------------------------------------------------------------------------

    def chunk(self, index: int, first_id: int, count: int) -> Chunk:
        rng = random.Random(self.seed * 1_000_003 + index)
        cases, events, links = [], [], []
        for case_id in range(first_id, first_id + count):
            case, life = self.case(rng, case_id, first_id)
            last = life.events[-1]
            created = case.pop("_created")
            case["status"] = life.status
            case["agency_id"] = life.agency
            case["deadline_policy_id"] = life.policy
            case["due_at"] = _dt(life.due)
            case["assigned_at"] = _dt(life.assigned_at)
            case["first_response_at"] = _dt(life.first_response)
            case["closed_at"] = _dt(life.closed_at)
            case["version"] = len(life.events)
            case["created_at"] = datetime.fromtimestamp(created, UTC)
            case["updated_at"] = datetime.fromtimestamp(last[-1], UTC)
            if life.first_response is not None:
                case["first_response_seconds"] = int(life.first_response - created)
                case["first_response_working_seconds"] = working_between(
                    created, life.first_response
                )
            if life.closed_at is not None:
                case["close_seconds"] = int(life.closed_at - created)
                case["close_working_seconds"] = working_between(created, life.closed_at)
            cases.append(case)
            for ev in life.events:
                events.append((case_id, *ev[:-1], datetime.fromtimestamp(ev[-1], UTC)))
            for agency_id, delivered in life.agencies.items():
                links.append((case_id, agency_id, _dt(delivered), case["created_at"]))
        return Chunk(cases, events, links)


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


# --------------------------------------------------------------------------- loading


@dataclass
class Layout:
    """Which columns to COPY, decided from the live schema."""

    case_columns: tuple[str, ...]
    event_columns: tuple[str, ...]
    link_columns: tuple[str, ...]


CASE_COLUMNS = (
    "id",
    "number",
    "kind",
    "status",
    "priority",
    "version",
    "category_id",
    "territory_id",
    "agency_id",
    "routing_rule_id",
    "routing_reason",
    "deadline_policy_id",
    "source_system",
    "external_id",
    "submitted_by",
    "text",
    "address",
    "latitude",
    "longitude",
    "network",
    "post_url",
    "author_handle",
    "published_at",
    "reach",
    "missing_person",
    "important",
    "channel",
    "legal_regime",
    "applicant_name",
    "applicant_email",
    "applicant_phone",
    "attachment_urls",
    "due_at",
    "assigned_at",
    "first_response_at",
    "closed_at",
    "interim_answer",
    "interim_planned_date",
    "final_answer",
    "resolution",
    "responsible_official",
    "reopen_count",
    "duplicate_of_id",
    "created_at",
    "updated_at",
)


async def _table_columns(conn, table: str) -> dict[str, tuple[bool, bool]]:
    rows = await conn.fetch(
        "SELECT column_name, is_nullable, column_default, is_identity FROM "
        "information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
        table,
    )
    if not rows:
        raise GeneratorError(f"table {table} missing: run python -m app migrate")
    return {
        r["column_name"]: (
            r["is_nullable"] == "YES",
            r["column_default"] is not None or r["is_identity"] == "YES",
        )
        for r in rows
    }


def _choose(table: str, live: dict, wanted: tuple[str, ...], optional: tuple[str, ...]):
    produced = set(wanted) | set(optional)
    for name, (nullable, has_default) in live.items():
        generated = name in produced or name in DATABASE_FILLED[table]
        if not generated and not nullable and not has_default:
            raise GeneratorError(
                f"{table}.{name} is NOT NULL without a default: teach bench/generate.py to fill it"
            )
    missing = [c for c in wanted if c not in live and c != "id"]
    if missing:
        raise GeneratorError(f"{table} lacks columns the generator fills: {missing}")
    return tuple(c for c in (*wanted, *optional) if c in live)


async def layout(conn) -> Layout:
    cases = _choose(
        "case_file", await _table_columns(conn, "case_file"), CASE_COLUMNS, OPTIONAL_CASE_COLUMNS
    )
    events = _choose("case_event", await _table_columns(conn, "case_event"), EVENT_COLUMNS, ())
    links = _choose(
        "case_agency",
        await _table_columns(conn, "case_agency"),
        CASE_AGENCY_COLUMNS,
        OPTIONAL_CASE_AGENCY_COLUMNS,
    )
    return Layout(cases, events, links)


async def _copy_chunk(conn, lay: Layout, chunk: Chunk) -> None:
    get_case = itemgetter(*lay.case_columns)
    case_rows = [get_case(_with_optional(c)) for c in chunk.cases]
    get_link = itemgetter(*(_LINK_FIELDS.index(c) for c in lay.link_columns))
    link_rows = [get_link(r) for r in chunk.case_agencies]
    async with conn.transaction():
        await conn.copy_records_to_table("case_file", records=case_rows, columns=lay.case_columns)
        await conn.copy_records_to_table(
            "case_event", records=chunk.events, columns=lay.event_columns
        )
        await conn.copy_records_to_table("case_agency", records=link_rows, columns=lay.link_columns)


def _with_optional(case: dict) -> dict:
    for name in OPTIONAL_CASE_COLUMNS:
        case.setdefault(name, None)
    return case


@dataclass
class Plan:
    dsn: str
    first_id: int
    cases: int
    chunk: int
    seed: int
    now: float
    jobs: int
    progress: bool


async def _work(plan: Plan, job: int) -> int:
    conn = await asyncpg.connect(plan.dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        ref = await load_reference(conn)
        lay = await layout(conn)
        gen = CaseGenerator(ref, plan.now, plan.seed, plan.first_id, plan.cases)
        chunks = (plan.cases + plan.chunk - 1) // plan.chunk
        done = 0
        started = time.monotonic()
        for index in range(job, chunks, plan.jobs):
            first = plan.first_id + index * plan.chunk
            count = min(plan.chunk, plan.first_id + plan.cases - first)
            await _copy_chunk(conn, lay, gen.chunk(index, first, count))
            done += count
            if plan.progress and job == 0:
                total = done * plan.jobs
                rate = total / max(time.monotonic() - started, 1e-6)
                print(
                    f"  ~{min(total, plan.cases):,} of {plan.cases:,} cases ({rate:,.0f}/s)",
                    file=sys.stderr,
                    flush=True,
                )
        return done
    finally:
        await conn.close()


def _work_in_process(plan: Plan, job: int) -> int:
    return asyncio.run(_work(plan, job))


@dataclass
class Report:
    cases: int
    first_id: int
    last_id: int
    seconds: float


async def generate(
    database_url: str,
    cases: int,
    *,
    seed: int = 1,
    jobs: int = 1,
    chunk: int = 10_000,
    now: datetime | None = None,
    progress: bool = False,
    analyze: bool = True,
) -> Report:
    """Appends `cases` generated cases (with events and agency links) to the database."""
    if cases < 1:
        raise GeneratorError("--cases must be at least 1")
    dsn = asyncpg_dsn(database_url)
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        await load_reference(conn)  # fail early, before reserving ids
        await layout(conn)
        # Reserve a block of ids from the case sequence, so the app's later inserts follow it.
        seq = await conn.fetchval("SELECT pg_get_serial_sequence('case_file', 'id')")
        if seq is None:
            raise GeneratorError("case_file.id has no sequence; is this the RegionDesk schema?")
        first_id = await conn.fetchval(
            "SELECT greatest(nextval($1::regclass), "
            "coalesce((SELECT max(id) FROM case_file), 0) + 1)",
            seq,
        )
        await conn.execute("SELECT setval($1::regclass, $2)", seq, first_id + cases - 1)
    finally:
        await conn.close()

    plan = Plan(
        dsn=dsn,
        first_id=first_id,
        cases=cases,
        chunk=max(1, min(chunk, cases)),
        seed=seed,
        now=(now or datetime.now(UTC)).timestamp(),
        jobs=max(1, jobs),
        progress=progress,
    )
    if plan.jobs == 1:
        await _work(plan, 0)
    else:
        loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=plan.jobs, mp_context=ctx) as pool:
            await asyncio.gather(
                *(loop.run_in_executor(pool, _work_in_process, plan, j) for j in range(plan.jobs))
            )
    conn = await asyncpg.connect(dsn)
    try:
        # The outbox trigger queued every generated event; in a live system that history was
        # sent long ago, so it is marked sent when it happened (a worker started on the data
        # would otherwise spend minutes on millions of past events before the first new one).
        await conn.execute(
            "UPDATE webhook_event SET dispatched_at = occurred_at "
            "WHERE dispatched_at IS NULL AND case_id BETWEEN $1 AND $2",
            first_id,
            first_id + cases - 1,
        )
        if analyze:
            # Vacuumed as well as analyzed, as autovacuum keeps a live database: COPY leaves no
            # visibility map (every index-only scan would visit the heap), no hint bits (the
            # first reads would write them), the GIN index's pending list full (every text
            # search would scan it) and the UPDATE above half of webhook_event dead.
            tables = "case_file, case_event, case_agency, webhook_event"
            if await conn.fetchval("SELECT to_regclass('case_search') IS NOT NULL"):
                tables += ", case_search"  # search pages walk it (migration 0014)
            await conn.execute(f"VACUUM (ANALYZE) {tables}")
    finally:
        await conn.close()
    return Report(cases, first_id, first_id + cases - 1, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.generate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cases", type=int, required=True, help="how many cases to add")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REGIONDESK_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL URL (default: $REGIONDESK_DATABASE_URL or %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--chunk", type=int, default=10_000, help="cases per COPY transaction")
    args = parser.parse_args(argv)
    if not args.database_url.startswith(("postgresql", "postgres:")):
        print("error: the generator loads PostgreSQL only (COPY)", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(
            generate(
                args.database_url,
                args.cases,
                seed=args.seed,
                jobs=args.jobs,
                chunk=args.chunk,
                progress=True,
            )
        )
    except GeneratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"Generated {report.cases:,} cases (ids {report.first_id}-{report.last_id}) "
        f"in {report.seconds:.1f} s ({report.cases / report.seconds:,.0f} cases/s)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
