"""Loads the demo region (Krasnodar Krai) idempotently: what exists is left as it is."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import ApiClient, User
from app.core.passwords import hash_secret
from app.reference import demo_data
from app.reference.models import Agency, AgencySector, Category, Territory
from app.routing.engine import invalidate_rules
from app.routing.models import RoutingRule


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.created[what] = self.created.get(what, 0) + 1


async def _existing(session: AsyncSession, model, key: str) -> dict:
    rows = (await session.exec(select(model))).all()
    return {getattr(row, key): row for row in rows}


async def seed_demo(session: AsyncSession) -> SeedReport:
    demo_data.validate()
    report = SeedReport()

    categories = await _existing(session, Category, "code")
    for seed in demo_data.CATEGORIES:  # sectors come before their subcategories
        if seed.code not in categories:
            parent = categories[seed.parent_code].id if seed.parent_code else None
            row = Category(
                code=seed.code, name_ru=seed.name_ru, name_en=seed.name_en, parent_id=parent
            )
            session.add(row)
            await session.flush()
            categories[seed.code] = row
            report.count("categories")

    territories = await _existing(session, Territory, "code")
    for seed in demo_data.TERRITORIES:
        if seed.code not in territories:
            parent = territories[seed.parent_code].id if seed.parent_code else None
            row = Territory(
                code=seed.code, oktmo=seed.oktmo, name=seed.name, kind=seed.kind, parent_id=parent
            )
            session.add(row)
            await session.flush()
            territories[seed.code] = row
            report.count("territories")

    agencies = await _existing(session, Agency, "code")
    for seed in demo_data.AGENCIES:
        if seed.code not in agencies:
            row = Agency(
                code=seed.code,
                name=seed.name,
                kind=seed.kind,
                territory_id=territories[seed.territory_code].id if seed.territory_code else None,
                parent_id=agencies[seed.parent_code].id if seed.parent_code else None,
                email=seed.email,
                phone=seed.phone,
            )
            session.add(row)
            await session.flush()
            for code in seed.sector_codes:
                session.add(AgencySector(agency_id=row.id, category_id=categories[code].id))
            agencies[seed.code] = row
            report.count("agencies")

    users = await _existing(session, User, "username")
    for seed in demo_data.DEMO_USERS:
        if seed.username not in users:
            session.add(
                User(
                    username=seed.username,
                    full_name=seed.full_name,
                    email=seed.email,
                    role=seed.role,
                    agency_id=agencies[seed.agency_code].id if seed.agency_code else None,
                    password_hash=hash_secret(seed.password),
                )
            )
            report.count("users")

    clients = await _existing(session, ApiClient, "client_id")
    for seed in demo_data.DEMO_CLIENTS:
        if seed.client_id not in clients:
            session.add(
                ApiClient(
                    client_id=seed.client_id,
                    name=seed.name,
                    role=seed.role,
                    source_system=seed.source_system,
                    agency_id=agencies[seed.agency_code].id if seed.agency_code else None,
                    secret_hash=hash_secret(seed.secret),
                )
            )
            report.count("clients")
    await _seed_rules(session, report, categories, territories, agencies)
    await session.flush()
    return report


async def _seed_rules(session, report: SeedReport, categories, territories, agencies) -> None:
    """Demo routing: missing persons to the partners first (not stopping), health to the
    ministry, and each municipality's sectors to its administration."""
    existing = {r.name for r in (await session.exec(select(RoutingRule))).all()}
    partners = [agencies[c].id for c in ("lizaalert", "missing-persons-centre") if c in agencies]
    rules = [
        RoutingRule(
            name="Пропавшие люди → ЛизаАлерт и Центр поиска",
            position=10,
            missing_person=True,
            notify_agency_ids=partners,
            priority="urgent",
            stop=False,
        ),
        RoutingRule(
            name="Здравоохранение → Минздрав края",
            position=20,
            category_ids=[categories["healthcare"].id],
            agency_id=agencies["minzdrav"].id,
        ),
    ]
    municipal = [categories[c].id for c in demo_data.MUNICIPAL_SECTORS]
    for seed in demo_data.AGENCIES:
        if seed.kind == "municipal_administration" and seed.territory_code in territories:
            rules.append(
                RoutingRule(
                    name=f"{territories[seed.territory_code].name}: муниципальные сферы",
                    position=100 + len(rules),
                    category_ids=municipal,
                    territory_ids=[territories[seed.territory_code].id],
                    agency_id=agencies[seed.code].id,
                )
            )
    for rule in rules:
        if rule.name not in existing:
            session.add(rule)
            report.count("routing rules")
    invalidate_rules()


def demo_credentials() -> list[str]:
    lines = [
        f"  {u.role:<12} {u.username:<12} password: {u.password}"
        + (f"  (agency {u.agency_code})" if u.agency_code else "")
        for u in demo_data.DEMO_USERS
    ]
    lines += [
        f"  {c.role:<12} client_id: {c.client_id}  client_secret: {c.secret}"
        for c in demo_data.DEMO_CLIENTS
    ]
    return lines
