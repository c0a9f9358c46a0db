"""Routing rules: validated writes (each one invalidates the cached rule set), the dry run,
and `route`, which the case intake calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cases.models import Case, CaseKind
from app.core.errors import InvalidReference, Unprocessable
from app.core.pagination import paged
from app.core.references import ensure_unreferenced, get_or_404, resolve
from app.core.schemas import PageParams
from app.core.types import utcnow
from app.deadlines.models import DeadlinePolicy
from app.reference.models import Agency, Category, Territory
from app.routing.engine import (
    CaseFacts,
    RoutingDecision,
    current_rules,
    invalidate_rules_on_commit,
    load_rules,
)
from app.routing.models import RoutingRule
from app.routing.schemas import (
    DryRunCase,
    DryRunCheck,
    DryRunDecision,
    DryRunResult,
    RoutingRuleCreate,
    RoutingRuleUpdate,
)

_ACTIONS = ("agency_id", "priority", "deadline_policy_id", "notify_agency_ids")
_ID_LISTS = {
    "category_ids": (Category, "category"),
    "territory_ids": (Territory, "territory"),
    "notify_agency_ids": (Agency, "agency"),
}
_LISTS = ("kinds", "category_ids", "territory_ids", "sources", "keywords", "notify_agency_ids")


# --- what the cases call ----------------------------------------------------------------------


async def route(session: AsyncSession, facts: CaseFacts) -> RoutingDecision:
    """The routing decision for a case, from the cached rule set. (The intake takes the rule
    set itself, `current_rules`, once per request: it also asks it which agencies it may
    pick, and a batch routes a thousand cases with it.)"""
    return (await current_rules(session)).evaluate(facts, explain=False)


async def sector_of(session: AsyncSession, category_id: int | None) -> int | None:
    """The sector (top-level category) of a category: its parent, or itself."""
    if category_id is None:
        return None
    category = await session.get(Category, category_id)
    if category is None:
        return None
    return category.parent_id or category.id


async def facts_for_case(session: AsyncSession, case: Case) -> CaseFacts:
    """The facts routing looks at, from a (not necessarily flushed) case."""
    source = case.network if case.kind == CaseKind.incident else case.channel
    return CaseFacts(
        kind=str(case.kind),
        category_id=case.category_id,
        sector_id=await sector_of(session, case.category_id),
        territory_id=case.territory_id,
        source=str(source) if source is not None else None,
        text=case.text or "",
        missing_person=bool(case.missing_person),
        important=bool(case.important),
    )


# --- rules -----------------------------------------------------------------------------------


async def list_rules(
    session: AsyncSession, page: PageParams, *, enabled: bool | None, agency_id: int | None
) -> tuple[Sequence[RoutingRule], int]:
    stmt = select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)
    if enabled is not None:
        stmt = stmt.where(RoutingRule.enabled == enabled)
    if agency_id is not None:
        stmt = stmt.where(RoutingRule.agency_id == agency_id)
    return await paged(session, stmt, page)


async def _check_ids(
    session: AsyncSession, model: type[SQLModel], label: str, ids: list[int], field: str
) -> None:
    """Every id exists and is active; a 422 names the first bad one (`category_ids.2`)."""
    if not ids:
        return
    table = model.__table__
    stmt = select(table.c.id, table.c.is_active).where(table.c.id.in_(set(ids)))
    found = dict((await session.execute(stmt)).all())
    for index, obj_id in enumerate(ids):
        name = f"{field}.{index}"
        if obj_id not in found:
            raise InvalidReference(name, f"{name}: no {label} with id {obj_id}")
        if not found[obj_id]:
            raise InvalidReference(name, f"{name}: {label} {obj_id} is inactive")


async def _check_refs(session: AsyncSession, changes: dict[str, Any]) -> None:
    await resolve(session, Agency, changes.get("agency_id"), "agency_id")
    await resolve(session, DeadlinePolicy, changes.get("deadline_policy_id"), "deadline_policy_id")
    for field, (model, label) in _ID_LISTS.items():
        await _check_ids(session, model, label, changes.get(field) or [], field)


def _check_has_action(state: dict[str, Any]) -> None:
    if not any(state.get(action) for action in _ACTIONS):
        raise Unprocessable(
            "A routing rule needs at least one action: agency_id, priority, "
            "deadline_policy_id or notify_agency_ids",
            errors=[
                {
                    "loc": ["body", action],
                    "msg": "a rule without any action does nothing",
                    "type": "missing-action",
                }
                for action in _ACTIONS
            ],
        )


def _dedupe(changes: dict[str, Any]) -> dict[str, Any]:
    for key in _LISTS:
        if changes.get(key) is not None:
            changes[key] = list(dict.fromkeys(changes[key]))
    return changes


async def _next_position(session: AsyncSession) -> int:
    last = (await session.exec(select(func.max(RoutingRule.position)))).scalar_one()
    return 0 if last is None else last + 1


async def create_rule(session: AsyncSession, data: RoutingRuleCreate) -> RoutingRule:
    changes = data.model_dump(mode="json")
    _check_has_action(changes)
    await _check_refs(session, changes)
    if changes["position"] is None:
        changes["position"] = await _next_position(session)
    rule = RoutingRule(**_dedupe(changes))
    session.add(rule)
    await session.flush()
    invalidate_rules_on_commit(session)
    return rule


async def update_rule(session: AsyncSession, rule_id: int, data: RoutingRuleUpdate) -> RoutingRule:
    rule = await get_or_404(session, RoutingRule, rule_id)
    changes = data.model_dump(mode="json", exclude_unset=True)
    _check_has_action({**{a: getattr(rule, a) for a in _ACTIONS}, **changes})
    await _check_refs(session, changes)
    for key, value in _dedupe(changes).items():
        setattr(rule, key, value)
    rule.updated_at = utcnow()
    await session.flush()
    invalidate_rules_on_commit(session)
    return rule


async def delete_rule(session: AsyncSession, rule_id: int) -> None:
    rule = await get_or_404(session, RoutingRule, rule_id)
    await ensure_unreferenced(session, RoutingRule, rule_id)
    await session.delete(rule)
    await session.flush()
    invalidate_rules_on_commit(session)


# --- dry run ---------------------------------------------------------------------------------


async def dry_run(session: AsyncSession, data: DryRunCase) -> DryRunResult:
    """What routing would decide for this case, rule by rule. Reads the rules afresh (not the
    cache), so it shows the committed rules even if another worker's cache lags."""
    category = await resolve(session, Category, data.category_id, "category_id")
    await resolve(session, Territory, data.territory_id, "territory_id")
    facts = CaseFacts(
        kind=data.kind.value,
        category_id=data.category_id,
        sector_id=(category.parent_id or category.id) if category is not None else None,
        territory_id=data.territory_id,
        source=data.source,
        text=data.text,
        missing_person=data.missing_person,
        important=data.important,
    )
    decision = (await load_rules(session)).evaluate(facts)
    return DryRunResult(
        decision=DryRunDecision.model_validate(decision),
        checks=[DryRunCheck.model_validate(check) for check in decision.checks],
    )
