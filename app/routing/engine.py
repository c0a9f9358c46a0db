"""Routing evaluation: a compiled, immutable rule set applied to a case's facts, and the
per-process cache of that rule set.

Semantics: enabled rules run in order (position, id). A rule matches when every condition it
sets holds. Matching rules' actions accumulate: the first one with an agency decides the agency
(and is the decision's rule); the first to set a priority or a deadline policy wins; notified
agencies are united in order; a matching rule with `stop` ends the evaluation.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import engine_of
from app.reference.models import Category, Territory
from app.routing.models import RoutingRule
from app.routing.text import KeywordMatcher, stems

NO_MATCH = "No rule matched"
REFRESH_SECONDS = 2.0  # how stale another worker process's view of the rules may get
_LIST_SHOWN = 5
_MEMO_LIMIT = 4096  # remembered decisions (and territories' candidate rules) per rule set


@dataclass(frozen=True)
class CaseFacts:
    kind: str
    category_id: int | None
    sector_id: int | None  # the top-level category of category_id (or category_id itself)
    territory_id: int | None
    source: str | None  # an incident's network or an appeal's channel
    text: str
    missing_person: bool = False
    important: bool = False


@dataclass(frozen=True)
class RuleCheck:
    rule_id: int
    name: str
    matched: bool
    reasons: tuple[str, ...]  # why it matched, or which conditions failed
    position: int = 0


@dataclass(frozen=True)
class RoutingDecision:
    rule_id: int | None  # the rule that chose the agency
    agency_id: int | None  # None: no rule assigns one, the case stays `new` for triage
    priority: str | None
    deadline_policy_id: int | None
    notify_agency_ids: tuple[int, ...]
    reason: str
    checks: tuple[RuleCheck, ...]
    rule_name: str | None = None


@dataclass(frozen=True)
class _Rule:
    id: int
    name: str
    position: int
    enabled: bool
    kinds: frozenset[str]
    category_ids: frozenset[int]
    territory_ids: frozenset[int]
    sources: frozenset[str]
    matcher: KeywordMatcher
    missing_person: bool | None
    important: bool | None
    agency_id: int | None
    priority: str | None
    deadline_policy_id: int | None
    notify_agency_ids: tuple[int, ...]
    stop: bool

    @classmethod
    def of(cls, row: Any) -> _Rule:
        """From a RoutingRule or a row with the same attribute names."""
        return cls(
            id=row.id,
            name=row.name,
            position=row.position,
            enabled=bool(row.enabled),
            kinds=frozenset(row.kinds or ()),
            category_ids=frozenset(row.category_ids or ()),
            territory_ids=frozenset(row.territory_ids or ()),
            sources=frozenset(row.sources or ()),
            matcher=KeywordMatcher((row.keywords or ()) if row.enabled else ()),
            missing_person=row.missing_person,
            important=row.important,
            agency_id=row.agency_id,
            priority=row.priority,
            deadline_policy_id=row.deadline_policy_id,
            notify_agency_ids=tuple(dict.fromkeys(row.notify_agency_ids or ())),
            stop=bool(row.stop),
        )


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _listing(values: Iterable[str]) -> str:
    items = sorted(values)
    shown = ", ".join(items[:_LIST_SHOWN])
    return shown + (f" and {len(items) - _LIST_SHOWN} more" if len(items) > _LIST_SHOWN else "")


@dataclass(frozen=True)
class _Applied:
    rule: _Rule
    reasons: tuple[str, ...]
    actions: tuple[str, ...]


class RuleSet:
    """Compiled and immutable: rules sorted by (position, id), keyword matchers built once.
    Safe to share between concurrent evaluations.

    The intake's evaluation (`explain=False`) looks only at the enabled rules that can match
    the case's territory (most rules of a region name one), and remembers its decisions: when
    none of those rules has keywords, the decision depends on the facts other than the text,
    which a batch repeats a thousand times over. The memos only grow within `_MEMO_LIMIT`
    entries and go with the rule set when the rules change."""

    __slots__ = ("_by_territory", "_categories", "_decisions", "_rules", "_territories")

    def __init__(
        self,
        rules: Iterable[Any],
        *,
        category_labels: Mapping[int, str] | None = None,
        territory_labels: Mapping[int, str] | None = None,
    ):
        compiled = sorted((_Rule.of(r) for r in rules), key=lambda r: (r.position, r.id))
        self._rules: tuple[_Rule, ...] = tuple(compiled)
        self._categories = dict(category_labels or {})
        self._territories = dict(territory_labels or {})
        # territory id -> (the enabled rules that may match there, whether any has keywords)
        self._by_territory: dict[int | None, tuple[tuple[_Rule, ...], bool]] = {}
        self._decisions: dict[tuple, RoutingDecision] = {}

    def __len__(self) -> int:
        return len(self._rules)

    @property
    def rule_ids(self) -> tuple[int, ...]:
        return tuple(r.id for r in self._rules)

    def _category(self, category_id: int) -> str:
        return self._categories.get(category_id) or str(category_id)

    def _territory(self, territory_id: int) -> str:
        return self._territories.get(territory_id) or str(territory_id)

    def _check(self, rule: _Rule, facts: CaseFacts, text_stems) -> tuple[bool, tuple[str, ...]]:
        held: list[str] = []
        failed: list[str] = []

        if rule.kinds:
            if facts.kind in rule.kinds:
                held.append(f"kind {facts.kind}")
            else:
                failed.append(f"kind {facts.kind} is not one of {_listing(rule.kinds)}")

        if rule.category_ids:
            wanted = _listing(self._category(c) for c in rule.category_ids)
            if facts.category_id is not None and facts.category_id in rule.category_ids:
                held.append(f"category {self._category(facts.category_id)}")
            elif facts.sector_id is not None and facts.sector_id in rule.category_ids:
                held.append(
                    f"category {self._category(facts.category_id or facts.sector_id)} "
                    f"in sector {self._category(facts.sector_id)}"
                )
            elif facts.category_id is None:
                failed.append(f"no category; rule needs {wanted}")
            else:
                failed.append(
                    f"category {self._category(facts.category_id)} is not one of {wanted}"
                )

        if rule.territory_ids:
            wanted = _listing(self._territory(t) for t in rule.territory_ids)
            if facts.territory_id is not None and facts.territory_id in rule.territory_ids:
                held.append(f"territory {self._territory(facts.territory_id)}")
            elif facts.territory_id is None:
                failed.append(f"no territory; rule needs {wanted}")
            else:
                failed.append(
                    f"territory {self._territory(facts.territory_id)} is not one of {wanted}"
                )

        if rule.sources:
            if facts.source is not None and facts.source in rule.sources:
                held.append(f"source {facts.source}")
            elif facts.source is None:
                failed.append(f"no source; rule needs {_listing(rule.sources)}")
            else:
                failed.append(f"source {facts.source} is not one of {_listing(rule.sources)}")

        if rule.matcher:
            keyword = rule.matcher.matches_stems(text_stems())
            if keyword is not None:
                held.append(f"keyword «{keyword}»")
            else:
                wanted = ", ".join(f"«{k}»" for k in rule.matcher.keywords[:_LIST_SHOWN])
                more = len(rule.matcher.keywords) - _LIST_SHOWN
                failed.append(
                    f"no keyword in the text ({wanted}{f' and {more} more' if more > 0 else ''})"
                )

        for name, wanted_flag, actual in (
            ("missing_person", rule.missing_person, facts.missing_person),
            ("important", rule.important, facts.important),
        ):
            if wanted_flag is None:
                continue
            if bool(actual) == wanted_flag:
                held.append(f"{name} {_flag(wanted_flag)}")
            else:
                failed.append(f"{name} is {_flag(bool(actual))}; rule needs {_flag(wanted_flag)}")

        if failed:
            return False, tuple(failed)
        return True, tuple(held) or ("no conditions: matches every case",)

    @staticmethod
    def _holds(rule: _Rule, facts: CaseFacts, text_stems) -> bool:
        """`_check` without the explanations: the hot path of intake."""
        if rule.kinds and facts.kind not in rule.kinds:
            return False
        if rule.category_ids and not (
            (facts.category_id is not None and facts.category_id in rule.category_ids)
            or (facts.sector_id is not None and facts.sector_id in rule.category_ids)
        ):
            return False
        if rule.territory_ids and facts.territory_id not in rule.territory_ids:
            return False
        if rule.sources and facts.source not in rule.sources:
            return False
        if rule.missing_person is not None and bool(facts.missing_person) != rule.missing_person:
            return False
        if rule.important is not None and bool(facts.important) != rule.important:
            return False
        return not rule.matcher or rule.matcher.matches_stems(text_stems()) is not None

    def _candidates(self, territory_id: int | None) -> tuple[tuple[_Rule, ...], bool]:
        found = self._by_territory.get(territory_id)
        if found is None:
            rules = tuple(
                r
                for r in self._rules
                if r.enabled and (not r.territory_ids or territory_id in r.territory_ids)
            )
            found = (rules, any(r.matcher for r in rules))
            if len(self._by_territory) < _MEMO_LIMIT:
                self._by_territory[territory_id] = found
        return found

    def agencies(self, territory_ids: Iterable[int | None]) -> set[int]:
        """Every agency a rule may assign a case of these territories to: the intake loads
        their state with its other references, before routing decides."""
        return {
            rule.agency_id
            for territory_id in set(territory_ids)
            for rule in self._candidates(territory_id)[0]
            if rule.agency_id is not None
        }

    def evaluate(self, facts: CaseFacts, *, explain: bool = True) -> RoutingDecision:
        """The decision for a case. With `explain`, every rule's check and why (dry-run);
        without, only the matching rules are explained (in the decision's reason), and the
        decision's checks list only the rules that matched."""
        if explain:
            return self._evaluate(self._rules, facts, explain=True)
        rules, textual = self._candidates(facts.territory_id)
        if textual:
            return self._evaluate(rules, facts, explain=False)
        key = (
            facts.kind,
            facts.category_id,
            facts.sector_id,
            facts.territory_id,
            facts.source,
            bool(facts.missing_person),
            bool(facts.important),
        )
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._evaluate(rules, facts, explain=False)
            if len(self._decisions) >= _MEMO_LIMIT:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def _evaluate(
        self, rules: tuple[_Rule, ...], facts: CaseFacts, *, explain: bool
    ) -> RoutingDecision:
        stemmed: list[frozenset[str]] = []

        def text_stems() -> frozenset[str]:
            if not stemmed:  # stem the text once, and only if some rule has keywords
                stemmed.append(stems(facts.text or ""))
            return stemmed[0]

        checks: list[RuleCheck] = []
        applied: list[_Applied] = []
        decider: _Applied | None = None
        priority: str | None = None
        policy_id: int | None = None
        notify: dict[int, None] = {}
        stopped_by: _Rule | None = None

        for rule in rules:
            if stopped_by is not None:
                if not explain:
                    break
                reason = f"not evaluated: rule {stopped_by.id} matched and stops evaluation"
                checks.append(RuleCheck(rule.id, rule.name, False, (reason,), rule.position))
                continue
            if not rule.enabled:
                checks.append(RuleCheck(rule.id, rule.name, False, ("disabled",), rule.position))
                continue
            if not explain and not self._holds(rule, facts, text_stems):
                continue
            matched, reasons = self._check(rule, facts, text_stems)
            checks.append(RuleCheck(rule.id, rule.name, matched, reasons, rule.position))
            if not matched:
                continue

            actions: list[str] = []
            is_decider = decider is None and rule.agency_id is not None
            if is_decider:
                actions.append(f"agency {rule.agency_id}")
            if priority is None and rule.priority is not None:
                priority = rule.priority
                actions.append(f"priority {priority}")
            if policy_id is None and rule.deadline_policy_id is not None:
                policy_id = rule.deadline_policy_id
                actions.append(f"deadline policy {policy_id}")
            added = [a for a in rule.notify_agency_ids if a not in notify]
            if added:
                notify.update(dict.fromkeys(added))
                actions.append("notify " + ", ".join(str(a) for a in added))
            entry = _Applied(rule, reasons, tuple(actions))
            applied.append(entry)
            if is_decider:
                decider = entry
            if rule.stop:
                stopped_by = rule

        return RoutingDecision(
            rule_id=decider.rule.id if decider else None,
            agency_id=decider.rule.agency_id if decider else None,
            priority=priority,
            deadline_policy_id=policy_id,
            notify_agency_ids=tuple(notify),
            reason=_reason(decider, applied),
            checks=tuple(checks),
            rule_name=decider.rule.name if decider else None,
        )


def _label(entry: _Applied) -> str:
    return f"rule {entry.rule.id} «{entry.rule.name}»"


def _reason(decider: _Applied | None, applied: list[_Applied]) -> str:
    if not applied:
        return NO_MATCH
    if decider is not None:
        head = f"Rule {decider.rule.id} «{decider.rule.name}»: " + "; ".join(decider.reasons)
    else:
        head = "No matching rule assigns an agency"
    extra = [
        f"{_label(e)} ({'; '.join(e.reasons)}): {', '.join(e.actions)}"
        for e in applied
        if e is not decider and e.actions
    ]
    if decider is not None:
        others = [a for a in decider.actions if not a.startswith("agency ")]
        if others:
            head += f" → {', '.join(others)}"
    return head + ("; also " + "; also ".join(extra) if extra else "")


# --- loading and the per-process cache --------------------------------------------------------


async def load_rules(session: AsyncSession) -> RuleSet:
    """Reads and compiles every rule (and the codes of the categories and territories the rules
    name, for the explanations). Columns only: nothing lands in the caller's identity map."""
    table = RoutingRule.__table__
    result = await session.execute(select(table).order_by(table.c.position, table.c.id))
    rows = result.all()
    category_ids = {c for r in rows if r.enabled for c in r.category_ids or ()}
    territory_ids = {t for r in rows if r.enabled for t in r.territory_ids or ()}
    categories: dict[int, str] = {}
    territories: dict[int, str] = {}
    if category_ids:
        found = await session.exec(
            select(Category.id, Category.code).where(Category.id.in_(category_ids))
        )
        categories = dict(found.all())
    if territory_ids:
        found = await session.exec(
            select(Territory.id, Territory.code).where(Territory.id.in_(territory_ids))
        )
        territories = dict(found.all())
    return RuleSet(rows, category_labels=categories, territory_labels=territories)


async def _fingerprint(session: AsyncSession) -> tuple[Any, ...]:
    columns = RoutingRule.__table__.columns
    result = await session.exec(select(func.count(), func.max(columns["updated_at"])))
    return tuple(result.one())


@dataclass(frozen=True)
class _Cached:
    rules: RuleSet
    fingerprint: tuple[Any, ...]
    checked_at: float
    generation: int


# One compiled rule set per database engine (one in production; each test app has its own).
_cache: weakref.WeakKeyDictionary[Engine, _Cached] = weakref.WeakKeyDictionary()
_generation = 0
_clock = time.monotonic


def invalidate_rules() -> None:
    """Forget the cached rule set in this process; the next `current_rules` re-reads it."""
    global _generation
    _generation += 1
    _cache.clear()


def invalidate_rules_on_commit(session: AsyncSession) -> None:
    """Invalidate now and again when the session's transaction ends, so a reload that ran
    between this flush and the commit cannot keep serving the old rules."""
    invalidate_rules()
    sync_session = session.sync_session
    if sync_session.info.get("routing_invalidation_hooked"):
        return
    sync_session.info["routing_invalidation_hooked"] = True

    def _after(*_: Any) -> None:
        invalidate_rules()

    event.listen(sync_session, "after_commit", _after)
    event.listen(sync_session, "after_rollback", _after)


async def current_rules(session: AsyncSession) -> RuleSet:
    """The cached rule set. Re-read only after `invalidate_rules()` in this process, or when
    more than REFRESH_SECONDS passed since the last check and the table's fingerprint
    (count, max(updated_at)) changed — how other worker processes' edits arrive."""
    key: Engine = engine_of(session)
    generation = _generation
    cached = _cache.get(key)
    fingerprint = None
    if cached is not None and cached.generation == generation:
        now = _clock()
        if now - cached.checked_at <= REFRESH_SECONDS:
            return cached.rules
        # Mark it checked first, so concurrent callers keep using it while this one checks.
        _cache[key] = replace(cached, checked_at=now)
        fingerprint = await _fingerprint(session)
        if fingerprint == cached.fingerprint:
            return cached.rules
    if fingerprint is None:
        fingerprint = await _fingerprint(session)
    rules = await load_rules(session)
    if _generation == generation:  # not invalidated while we were reading
        _cache[key] = _Cached(rules, fingerprint, _clock(), generation)  # one atomic swap
    return rules
