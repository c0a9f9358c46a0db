"""The routing engine: rule order, accumulation of actions, each condition, and the cache."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import delete, event, update

from app.routing import engine as routing_engine
from app.routing.engine import (
    NO_MATCH,
    CaseFacts,
    RuleSet,
    current_rules,
    invalidate_rules,
)
from app.routing.models import RoutingRule
from app.routing.service import route
from tests import factories
from tests.routing import routing_rule

ROADS, PITS, LIGHTS, HEALTH = 10, 11, 12, 20  # sector roads → pits, lights; sector health
KRASNODAR, SOCHI = 100, 101

FACTS = CaseFacts(
    kind="incident",
    category_id=PITS,
    sector_id=ROADS,
    territory_id=KRASNODAR,
    source="vk",
    text="На дороге огромные ямы",
    missing_person=False,
    important=False,
)


def rule(rule_id: int, **kw) -> RoutingRule:
    return routing_rule(id=rule_id, **{"position": rule_id, **kw})


def evaluate(*rules: RoutingRule, facts: CaseFacts = FACTS, **labels):
    return RuleSet(rules, **labels).evaluate(facts)


def check(decision, rule_id: int):
    return next(c for c in decision.checks if c.rule_id == rule_id)


# --- order and accumulation ------------------------------------------------------------------


def test_rules_run_by_position_then_id_and_the_first_agency_rule_decides():
    decision = evaluate(
        rule(1, position=5, agency_id=501, stop=False),
        rule(2, position=1, agency_id=502, stop=False),
        rule(3, position=1, agency_id=503, stop=False),
    )
    assert (decision.rule_id, decision.agency_id) == (2, 502)
    assert [c.rule_id for c in decision.checks] == [2, 3, 1]
    assert all(c.matched for c in decision.checks)


def test_non_stop_rule_contributes_then_stop_rule_assigns_and_ends_evaluation():
    decision = evaluate(
        rule(
            1,
            name="Пропавшие",
            missing_person=True,
            priority="urgent",
            notify_agency_ids=[7, 8],
            stop=False,
        ),
        rule(2, name="Муниципалитет", agency_id=30, priority="normal", notify_agency_ids=[8, 9]),
        rule(3, name="После стопа", agency_id=40, priority="low"),
        facts=replace(FACTS, missing_person=True),
    )
    assert decision.rule_id == 2
    assert decision.rule_name == "Муниципалитет"
    assert decision.agency_id == 30
    assert decision.priority == "urgent"  # the first rule that sets a priority wins
    assert decision.notify_agency_ids == (7, 8, 9)  # union, in order
    assert check(decision, 3).matched is False
    assert check(decision, 3).reasons == ("not evaluated: rule 2 matched and stops evaluation",)
    assert decision.reason.startswith("Rule 2 «Муниципалитет»")
    assert "rule 1 «Пропавшие» (missing_person true): priority urgent, notify 7, 8" in (
        decision.reason
    )


def test_a_stop_rule_without_an_agency_leaves_the_case_unassigned():
    decision = evaluate(
        rule(1, priority="high", stop=True),
        rule(2, agency_id=30),
    )
    assert decision.agency_id is None and decision.rule_id is None
    assert decision.priority == "high"
    assert decision.reason.startswith("No matching rule assigns an agency")


def test_first_deadline_policy_wins_and_later_agency_rules_do_not_override():
    decision = evaluate(
        rule(1, agency_id=30, priority=None, stop=False),
        rule(2, agency_id=40, deadline_policy_id=5, priority="low", stop=False),
        rule(3, deadline_policy_id=6, priority=None),
    )
    assert (decision.rule_id, decision.agency_id) == (1, 30)
    assert decision.deadline_policy_id == 5
    assert decision.priority == "low"


def test_reason_names_the_deciding_rule_with_category_code_and_keyword():
    decision = evaluate(
        rule(3, name="Ямы в Краснодаре", category_ids=[PITS], keywords=["яма"], agency_id=30),
        category_labels={PITS: "roads.pits"},
    )
    assert decision.reason.startswith(
        "Rule 3 «Ямы в Краснодаре»: category roads.pits; keyword «яма»"
    )


def test_no_rule_matches_leaves_agency_none():
    decision = evaluate(rule(1, kinds=["appeal"], agency_id=30))
    assert decision.agency_id is None and decision.rule_id is None
    assert decision.priority is None and decision.notify_agency_ids == ()
    assert decision.reason == NO_MATCH
    assert RuleSet([]).evaluate(FACTS).reason == NO_MATCH


def test_disabled_rule_is_skipped_and_listed_as_disabled():
    decision = evaluate(rule(1, enabled=False, agency_id=30), rule(2, agency_id=40))
    assert decision.agency_id == 40
    assert check(decision, 1).matched is False
    assert check(decision, 1).reasons == ("disabled",)


def test_rule_without_conditions_matches_everything():
    decision = evaluate(rule(1, agency_id=30))
    assert decision.agency_id == 30
    assert check(decision, 1).reasons == ("no conditions: matches every case",)


def test_compiled_rule_set_does_not_change_when_the_source_rows_do():
    row = rule(1, agency_id=30)
    rules = RuleSet([row])
    row.agency_id = 99
    row.kinds = ["appeal"]
    assert rules.evaluate(FACTS).agency_id == 30


# --- categories: a sector matches its subcategories ------------------------------------------


def test_sector_rule_matches_a_case_in_its_subcategory():
    decision = evaluate(
        rule(1, category_ids=[ROADS], agency_id=30), category_labels={ROADS: "roads"}
    )
    assert decision.agency_id == 30
    assert check(decision, 1).reasons == (f"category {PITS} in sector roads",)


def test_subcategory_rule_does_not_match_a_sibling_or_the_bare_sector():
    pits_rule = rule(1, category_ids=[PITS], agency_id=30)
    assert evaluate(pits_rule, facts=replace(FACTS, category_id=LIGHTS)).agency_id is None
    assert evaluate(pits_rule, facts=replace(FACTS, category_id=ROADS)).agency_id is None
    assert evaluate(pits_rule).agency_id == 30


# --- each condition, and the reason it gives when it fails -----------------------------------


@pytest.mark.parametrize(
    ("conditions", "facts", "reason"),
    [
        ({"kinds": ["appeal"]}, {}, "kind incident is not one of appeal"),
        ({"category_ids": [HEALTH]}, {}, f"category {PITS} is not one of {HEALTH}"),
        ({"category_ids": [HEALTH]}, {"category_id": None, "sector_id": None}, "no category"),
        ({"territory_ids": [SOCHI]}, {}, f"territory {KRASNODAR} is not one of {SOCHI}"),
        ({"territory_ids": [SOCHI]}, {"territory_id": None}, "no territory"),
        ({"sources": ["telegram", "web"]}, {}, "source vk is not one of telegram, web"),
        ({"sources": ["telegram"]}, {"source": None}, "no source"),
        ({"keywords": ["мусор", "свалка"]}, {}, "no keyword in the text («мусор», «свалка»)"),
        ({"missing_person": True}, {}, "missing_person is false; rule needs true"),
        ({"important": True}, {}, "important is false; rule needs true"),
        ({"important": False}, {"important": True}, "important is true; rule needs false"),
    ],
)
def test_each_condition_fails_with_its_reason(conditions, facts, reason):
    decision = evaluate(rule(1, agency_id=30, **conditions), facts=replace(FACTS, **facts))
    assert decision.agency_id is None
    result = check(decision, 1)
    assert result.matched is False
    assert any(r.startswith(reason) for r in result.reasons), result.reasons


@pytest.mark.parametrize(
    ("conditions", "reason"),
    [
        ({"kinds": ["incident", "appeal"]}, "kind incident"),
        ({"category_ids": [PITS, HEALTH]}, f"category {PITS}"),
        ({"territory_ids": [KRASNODAR, SOCHI]}, f"territory {KRASNODAR}"),
        ({"sources": ["vk", "web"]}, "source vk"),
        ({"keywords": ["мусор", "яма"]}, "keyword «яма»"),
        ({"missing_person": False}, "missing_person false"),
        ({"important": False}, "important false"),
    ],
)
def test_each_condition_holds_with_its_reason(conditions, reason):
    decision = evaluate(rule(1, agency_id=30, **conditions))
    assert decision.agency_id == 30
    assert check(decision, 1).reasons == (reason,)


def test_every_failed_condition_is_listed():
    decision = evaluate(rule(1, kinds=["appeal"], sources=["web"], keywords=["мусор"]))
    assert len(check(decision, 1).reasons) == 3


# --- the cache ------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(routing_engine, "_clock", fake)
    invalidate_rules()
    yield fake
    invalidate_rules()


@pytest.fixture
def statements(client):
    seen: list[str] = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    sync_engine = client.app.state.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", listener)
    yield seen
    event.remove(sync_engine, "before_cursor_execute", listener)


def _rule_ids(db):
    return db.run(current_rules).rule_ids


def test_second_call_is_served_from_the_cache_without_a_query(db, clock, statements):
    db.add(routing_rule(agency_id=None))
    first = db.run(current_rules)
    assert len(first) == 1
    assert any("routing_rule" in s for s in statements)

    statements.clear()
    clock.now += 1.9
    assert db.run(current_rules) is first
    assert not any("routing_rule" in s for s in statements), statements


def test_after_two_seconds_an_unchanged_fingerprint_keeps_the_rule_set(db, clock, statements):
    db.add(routing_rule())
    first = db.run(current_rules)
    clock.now += 2.5
    statements.clear()
    assert db.run(current_rules) is first
    assert len([s for s in statements if "routing_rule" in s]) == 1  # the fingerprint only
    statements.clear()
    assert db.run(current_rules) is first  # checked again only after another 2 s
    assert statements == []


def test_another_process_change_is_seen_after_two_seconds_not_before(db, clock):
    old = db.add(routing_rule(name="old"))
    assert _rule_ids(db) == (old.id,)

    new = db.add(routing_rule(name="new"))  # as if written by another worker process
    clock.now += 1.0
    assert _rule_ids(db) == (old.id,)
    clock.now += 1.5
    assert _rule_ids(db) == (old.id, new.id)

    async def delete_new(session):
        await session.exec(delete(RoutingRule).where(RoutingRule.id == new.id))

    db.run(delete_new)  # deleting changes the count
    clock.now += 2.5
    assert _rule_ids(db) == (old.id,)


def test_an_update_is_seen_through_updated_at(db, clock):
    from app.core.types import utcnow

    r = db.add(routing_rule(position=1, agency_id=None))
    other = db.add(routing_rule(position=2))
    assert _rule_ids(db) == (r.id, other.id)

    async def move(session):
        await session.exec(
            update(RoutingRule)
            .where(RoutingRule.id == r.id)
            .values(position=3, updated_at=utcnow())
        )

    db.run(move)
    clock.now += 2.5
    assert _rule_ids(db) == (other.id, r.id)


def test_invalidate_rules_forces_a_reread(db, clock, statements):
    db.add(routing_rule())
    first = db.run(current_rules)
    invalidate_rules()
    statements.clear()
    second = db.run(current_rules)
    assert second is not first
    assert any("routing_rule" in s for s in statements)


def test_a_write_through_the_api_invalidates_the_cache(client, db, auth, clock):
    admin = auth.headers("admin")
    agency = db.add(factories.agency())
    assert len(db.run(current_rules)) == 0

    response = client.post(
        "/api/v1/routing-rules",
        json={"name": "Ямы", "keywords": ["яма"], "agency_id": agency.id},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    rule_id = response.json()["id"]
    assert db.run(current_rules).rule_ids == (rule_id,)  # no clock advance needed

    assert (
        client.patch(
            f"/api/v1/routing-rules/{rule_id}", json={"enabled": False}, headers=admin
        ).status_code
        == 200
    )
    decision = db.run(lambda s: route(s, FACTS))
    assert decision.agency_id is None

    assert client.delete(f"/api/v1/routing-rules/{rule_id}", headers=admin).status_code == 204
    assert len(db.run(current_rules)) == 0


def test_route_uses_the_stored_rules(db, clock):
    sector = db.add(factories.category(code="roads"))
    pits = db.add(factories.category(code="roads.pits", parent_id=sector.id))
    agency = db.add(factories.agency())
    db.add(
        routing_rule(name="Ямы", category_ids=[sector.id], keywords=["яма"], agency_id=agency.id)
    )
    facts = replace(FACTS, category_id=pits.id, sector_id=sector.id)
    decision = db.run(lambda s: route(s, facts))
    assert decision.agency_id == agency.id
    assert f"category {pits.id} in sector roads" in decision.reason
    assert "keyword «яма»" in decision.reason


def test_the_unexplained_hot_path_decides_exactly_as_the_explained_one():
    """Intake evaluates without explanations; every combination of conditions must lead to
    the same decision and reason as the dry-run's full evaluation."""
    import itertools

    conditions = [
        {},
        {"kinds": ["incident"]},
        {"kinds": ["appeal"]},
        {"category_ids": [ROADS]},
        {"category_ids": [LIGHTS]},
        {"territory_ids": [SOCHI]},
        {"territory_ids": [KRASNODAR]},
        {"sources": ["vk"]},
        {"sources": ["telegram"]},
        {"keywords": ["яма"]},
        {"keywords": ["свет"]},
        {"missing_person": True},
        {"important": False},
    ]
    facts_variants = [
        FACTS,
        replace(FACTS, category_id=None, sector_id=None, territory_id=None, source=None),
        replace(FACTS, kind="appeal", missing_person=True, text="Нет света"),
    ]
    rules_seen = 0
    for first, second in itertools.combinations(conditions, 2):
        rules = [
            rule(1, agency_id=501, stop=False, priority="high", **first),
            rule(2, agency_id=502, notify_agency_ids=[9], **second),
            rule(3, agency_id=503, **{**first, **second}),
        ]
        ruleset = RuleSet(rules)
        for facts in facts_variants:
            full, fast = ruleset.evaluate(facts), ruleset.evaluate(facts, explain=False)
            assert replace(fast, checks=full.checks) == full, (first, second, facts)
            rules_seen += 1
    assert rules_seen == 78 * 3


# --- the intake's hot path: candidates by territory, remembered decisions ---------------------


def test_the_hot_path_remembers_a_decision_only_where_the_text_cannot_change_it():
    by_place = RuleSet([rule(1, territory_ids=[SOCHI], agency_id=501)])
    in_sochi = replace(FACTS, territory_id=SOCHI)
    first = by_place.evaluate(in_sochi, explain=False)
    again = by_place.evaluate(replace(in_sochi, text="Другой текст"), explain=False)
    assert again is first and first.agency_id == 501

    by_word = RuleSet([rule(1, keywords=["яма"], agency_id=501), rule(2, agency_id=502)])
    pits = by_word.evaluate(FACTS, explain=False)
    lights = by_word.evaluate(replace(FACTS, text="Не горит свет"), explain=False)
    assert (pits.agency_id, lights.agency_id) == (501, 502)


def test_the_hot_path_skips_other_territories_rules_and_lists_only_matches():
    rules = RuleSet(
        [
            rule(1, territory_ids=[SOCHI], agency_id=501),
            rule(2, enabled=False, agency_id=502),
            rule(3, territory_ids=[KRASNODAR], agency_id=503, stop=True),
            rule(4, agency_id=504),
        ]
    )
    decision = rules.evaluate(FACTS, explain=False)
    assert decision.agency_id == 503
    assert [c.rule_id for c in decision.checks] == [3]
    assert [c.rule_id for c in rules.evaluate(FACTS).checks] == [1, 2, 3, 4]


def test_agencies_are_those_a_rule_may_assign_in_the_territories():
    rules = RuleSet(
        [
            rule(1, territory_ids=[SOCHI], agency_id=501),
            rule(2, territory_ids=[KRASNODAR], agency_id=502),
            rule(3, agency_id=503, category_ids=[HEALTH]),
            rule(4, enabled=False, agency_id=504),
            rule(5, notify_agency_ids=[505]),
        ]
    )
    assert rules.agencies([KRASNODAR]) == {502, 503}
    assert rules.agencies([SOCHI, None]) == {501, 503}
