"""Cases: intake with routing, the workflow actions, operator edits, reads. Only flushes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.cases import access, reads
from app.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseAgency,
    CaseEvent,
    CaseKind,
    CaseStatus,
    Priority,
)
from app.cases.queries import CaseFilters, decode_cursor, encode_cursor, given, open_only
from app.cases.schemas import (
    AppealCreate,
    AssignBody,
    CaseEdit,
    CaseRead,
    CloseBody,
    IncidentCreate,
    InterimAnswerBody,
    RejectBody,
    ReopenBody,
    ReturnBody,
)
from app.cases.workflow import TRANSITIONS, Action, target_status
from app.core.config import Settings
from app.core.db import savepoint
from app.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidReference,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    domain_problem,
    validation_problem,
)
from app.core.references import resolve
from app.core.schemas import MAX_ID
from app.core.types import utcnow
from app.deadlines.service import due_after_interim, due_from, production_calendar, select_policy
from app.privacy.service import reader_values, record_reads, records_reads
from app.reference.models import Agency, Category, Territory
from app.routing.engine import CaseFacts, RoutingDecision
from app.routing.service import route, sector_of
from app.stats.durations import elapsed

SYSTEM_ACTOR = ("system:routing", "Маршрутизация", "system")


MAX_BATCH = 1000


@dataclass
class Intake:
    case: Case
    created: bool


@dataclass
class BatchOutcome:
    index: int
    intake: Intake | None = None
    problem: dict[str, Any] | None = None
    same_as: int | None = None  # an earlier item of the same batch with the same source id


@dataclass
class _Prepared:
    case: Case
    decision: RoutingDecision
    steps: list[tuple[Principal | None, str, dict[str, Any]]] = field(default_factory=list)
    grants: list[int] = field(default_factory=list)


def _external_id(data: IncidentCreate | AppealCreate) -> str:
    return data.post_id if isinstance(data, IncidentCreate) else data.number


def _facts(case: Case, sector_id: int | None) -> CaseFacts:
    return CaseFacts(
        kind=case.kind,
        category_id=case.category_id,
        sector_id=sector_id,
        territory_id=case.territory_id,
        source=case.network or case.channel,
        text=case.text,
        missing_person=case.missing_person,
        important=case.important,
    )


@cache
def _adapter(model: type) -> TypeAdapter:
    return TypeAdapter(model)


def _actor(principal: Principal | None) -> tuple[str, str, str]:
    if principal is None:
        return SYSTEM_ACTOR
    return principal.subject, principal.name, principal.role.value


def _event(case: Case, principal: Principal | None, action: str, **kw: Any) -> CaseEvent:
    actor, name, role = _actor(principal)
    return CaseEvent(
        case_id=case.id, action=action, actor=actor, actor_name=name, actor_role=role, **kw
    )


_EVENT_DEFAULTS: dict[str, Any] = dict.fromkeys(
    ("from_status", "to_status", "from_agency_id", "to_agency_id", "reason", "comment"),
) | {"changes": None, "data": None}


def _number(case: Case) -> str:
    prefix = "INC" if case.kind == CaseKind.incident else "APL"
    return f"{prefix}-{case.created_at.year}-{case.id:06d}"


async def _category_and_sector(session, category_id: int | None, field: str = "category_id"):
    category = await resolve(session, Category, category_id, field)
    if category is None:
        return None, None
    return category, (category.parent_id or category.id)


class CaseService:
    def __init__(self, session: AsyncSession, settings: Settings, principal: Principal):
        self.session = session
        self.settings = settings
        self.principal = principal
        self._pinned: list[Any] = []  # reference rows a batch keeps in the identity map

    # --- intake ------------------------------------------------------------------------------
    #
    # A case is prepared in memory (references resolved, routed, deadline computed), inserted,
    # and then given its number, events and access rows. A batch does each phase for all its
    # items at once, so 1,000 items cost a handful of round trips, not thousands.

    async def submit(self, data: IncidentCreate | AppealCreate) -> Intake:
        source_system = self._source_system()
        external_id = _external_id(data)
        existing = await self._by_external_id(source_system, [external_id])
        if existing:
            return Intake(existing[external_id], created=False)
        await self._resolve_references(data)
        [prepared] = await self._prepare([data], source_system)
        try:
            async with savepoint(self.session):  # a racing duplicate loses only this
                self.session.add(prepared.case)
                await self.session.flush()
        except IntegrityError:
            existing = await self._by_external_id(source_system, [external_id])
            if not existing:
                raise
            return Intake(existing[external_id], created=False)
        await self._record_intake([prepared])
        return Intake(prepared.case, created=True)

    async def submit_many(
        self, items: Sequence[Any], model: type[IncidentCreate] | type[AppealCreate]
    ) -> list[BatchOutcome]:
        """Item by item outcomes: created, already there, or the item's own problem."""
        if len(items) > MAX_BATCH:
            raise PayloadTooLarge(
                f"At most {MAX_BATCH} items per batch; this one has {len(items)}",
                limit=MAX_BATCH,
            )
        source_system = self._source_system()
        outcomes = [BatchOutcome(index=i) for i in range(len(items))]
        adapter = _adapter(model)
        valid: list[tuple[int, IncidentCreate | AppealCreate]] = []
        for i, raw in enumerate(items):
            try:
                valid.append((i, adapter.validate_python(raw)))
            except ValidationError as exc:
                outcomes[i].problem = validation_problem(exc.errors(), ("body", "items", i))

        existing = await self._by_external_id(source_system, [_external_id(d) for _, d in valid])
        await self._prefetch(valid)
        first: dict[str, int] = {}  # external id -> index of its first item in this batch
        todo: list[tuple[int, IncidentCreate | AppealCreate]] = []
        for i, data in valid:
            external_id = _external_id(data)
            if external_id in existing:
                outcomes[i].intake = Intake(existing[external_id], created=False)
            elif external_id in first:
                outcomes[i].same_as = first[external_id]
            else:
                try:
                    await self._resolve_references(data)  # from the identity map: no query
                except DomainError as exc:
                    outcomes[i].problem = domain_problem(exc)
                    continue
                first[external_id] = i
                todo.append((i, data))

        prepared = await self._prepare([d for _, d in todo], source_system)
        try:
            async with savepoint(self.session):
                self.session.add_all([p.case for p in prepared])
                await self.session.flush()
        except IntegrityError:
            # Another request took one of these source ids meanwhile (rare): one by one.
            for i, data in todo:
                outcomes[i].intake = await self.submit(data)
        else:
            await self._record_intake(prepared)
            for (i, _), p in zip(todo, prepared, strict=True):
                outcomes[i].intake = Intake(p.case, created=True)
        for outcome in outcomes:
            if outcome.same_as is not None:
                outcome.intake = Intake(outcomes[outcome.same_as].intake.case, created=False)
        return outcomes

    def _source_system(self) -> str:
        return self.principal.source_system or "operator"

    async def _by_external_id(self, source_system: str, external_ids: list[str]) -> dict:
        if not external_ids:
            return {}
        stmt = select(Case).where(
            Case.source_system == source_system, Case.external_id.in_(set(external_ids))
        )
        return {c.external_id: c for c in (await self.session.execute(stmt)).scalars()}

    async def _prefetch(self, items: list[tuple[int, Any]]) -> None:
        """Load the categories (with their sectors) and territories a batch refers to, once.
        Held here, they stay in the session's (weak) identity map, so the per-item lookups
        (`resolve`, `sector_of`) cost no query."""
        for model, attr in ((Category, "category_id"), (Territory, "territory_id")):
            ids = {getattr(d, attr) for _, d in items} - {None}
            ids = {i for i in ids if 1 <= i <= MAX_ID}
            if ids:
                rows = await self.session.execute(select(model).where(model.id.in_(ids)))
                self._pinned.extend(rows.scalars())
        parents = {c.parent_id for c in self._pinned if isinstance(c, Category)} - {None}
        if parents:
            rows = await self.session.execute(select(Category).where(Category.id.in_(parents)))
            self._pinned.extend(rows.scalars())

    async def _resolve_references(self, data: IncidentCreate | AppealCreate) -> None:
        category, _ = await _category_and_sector(self.session, data.category_id)
        territory = await resolve(self.session, Territory, data.territory_id, "territory_id")
        # Held for the request: the identity map is weak, and routing (sector_of) and the
        # deadline policy look the category up again — from the map, not the database.
        self._pinned.extend(r for r in (category, territory) if r is not None)

    async def _prepare(self, items: list[Any], source_system: str) -> list[_Prepared]:
        """New cases, routed and (where a rule names an agency) assigned, not yet inserted."""
        prepared = []
        for data in items:
            incident = isinstance(data, IncidentCreate)
            fields = data.model_dump(mode="json", exclude={"post_id", "number"})
            if incident:
                fields["published_at"] = data.published_at
            case = Case(
                **fields,
                kind=CaseKind.incident if incident else CaseKind.appeal,
                status=CaseStatus.new,
                priority=Priority.normal,
                source_system=source_system,
                external_id=_external_id(data),
                submitted_by=self.principal.subject,
            )
            if incident and data.missing_person:
                case.priority = Priority.urgent
            elif incident and data.important:
                case.priority = Priority.high
            sector_id = await sector_of(self.session, case.category_id)
            decision = await route(self.session, _facts(case, sector_id))
            prepared.append(_Prepared(case, decision))

        agency_ids = {p.decision.agency_id for p in prepared} - {None}
        agencies: dict[int, Agency] = {}
        if agency_ids:
            rows = await self.session.execute(select(Agency).where(Agency.id.in_(agency_ids)))
            agencies = {a.id: a for a in rows.scalars()}
        for p in prepared:
            case, decision = p.case, p.decision
            p.steps.append((self.principal, "create", {"to_status": CaseStatus.new}))
            case.routing_reason = decision.reason
            case.routing_rule_id = decision.rule_id
            if decision.priority:
                case.priority = decision.priority
            case.deadline_policy_id = decision.deadline_policy_id
            if decision.notify_agency_ids:
                p.grants.extend(decision.notify_agency_ids)
                notified = {"agency_ids": list(decision.notify_agency_ids)}
                p.steps.append((None, "notify", {"data": notified, "comment": decision.reason}))
            if decision.agency_id is None:
                continue
            agency = agencies.get(decision.agency_id)
            if agency is None or not agency.is_active:
                case.routing_reason = (
                    f"{decision.reason}; agency {decision.agency_id} is inactive, left for triage"
                )
                continue
            step = await self._apply_assignment(case, agency.id, registered_at=case.created_at)
            step.update(reason="routing", comment=decision.reason)
            p.steps.append((None, "assign", step))
            p.grants.append(agency.id)
        return prepared

    async def _record_intake(self, prepared: list[_Prepared]) -> None:
        """Numbers, events and access rows of freshly inserted cases, in bulk."""
        if not prepared:
            return
        table = Case.__table__
        numbers = [{"b_id": p.case.id, "b_number": _number(p.case)} for p in prepared]
        set_number = update(table).where(table.c.id == bindparam("b_id"))
        await self.session.execute(set_number.values(number=bindparam("b_number")), numbers)
        # Plain rows, not ORM objects (a tenth of the cost for a batch); the outbox trigger on
        # case_event sees them like any other insert.
        now = utcnow()
        events: list[dict[str, Any]] = []
        grants: list[dict[str, Any]] = []
        for p, n in zip(prepared, numbers, strict=True):
            set_committed_value(p.case, "number", n["b_number"])
            for who, action, kw in p.steps:
                actor, name, role = _actor(who)
                events.append(
                    {
                        **_EVENT_DEFAULTS,
                        **kw,
                        "case_id": p.case.id,
                        "action": action,
                        "actor": actor,
                        "actor_name": name,
                        "actor_role": role,
                        "created_at": now,
                    }
                )
            grants.extend({"case_id": p.case.id, "agency_id": a} for a in dict.fromkeys(p.grants))
        await self.session.execute(insert(CaseEvent.__table__), events)
        if grants:
            await self.session.execute(insert(CaseAgency.__table__), grants)

    # --- reads -------------------------------------------------------------------------------

    async def get(self, case_id: int, kind: CaseKind | None = None) -> Case:
        stmt = select(Case).where(Case.id == case_id, access.visible(self.principal))
        if kind is not None:
            stmt = stmt.where(Case.kind == kind)
        case = (await self.session.execute(stmt)).scalars().first()
        if case is None:
            raise NotFound(f"No case with id {case_id}")
        return case

    async def show(self, case_id: int, kind: CaseKind | None = None) -> dict[str, Any]:
        """One case as its own page shows it (CaseRead's fields, reads.answer), with the
        partners' webhook receipts; a person shown personal data is recorded. One statement."""
        rule, params = access.rule_of(self.principal)
        recorded, in_statement = self._records()
        stmt = reads.one_case(self._dialect(), rule, kind is not None, in_statement)
        params["case_id"] = case_id
        if kind is not None:
            params["kind"] = kind.value
        if in_statement:
            params |= reader_values(self.principal)
        connection = await self.session.connection()
        rows = (await connection.execute(stmt, params)).all()
        if not rows:
            raise NotFound(f"No case with id {case_id}")
        partners = [reads.partner(*row[-3:]) for row in rows if row[-3] is not None]
        data = reads.answer(rows[0], self.principal, self._hidden(), utcnow(), partners)
        if recorded and not in_statement:
            record_reads(self.session, self.principal, [data], "read")
        return data

    async def events(self, case_id: int, limit: int, offset: int) -> list[CaseEvent]:
        await self.get(case_id)
        stmt = (
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.id)
            .limit(limit)
            .offset(offset)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def list(
        self, filters: CaseFilters, sort: str, limit: int, cursor: str | None, with_total: bool
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        """A page of cases as the list shows them (reads.answer, without partners), the
        cursor of the next page and, if asked, the total. One statement (two with the total),
        built once per shape of request (reads.page); a person shown personal data is
        recorded (in that statement on PostgreSQL)."""
        dialect = self._dialect()
        rule, params = access.rule_of(self.principal)
        values = given(filters)
        if filters.category_id is not None:
            values["category_id"] = filters.category_id
        value = last_id = None
        if cursor is not None:
            value, last_id = decode_cursor(sort, cursor)
            params |= {"cursor_value": value, "cursor_id": last_id}
        recorded, in_statement = self._records()
        shape = reads.PageShape(
            dialect=dialect,
            rule=rule,
            given=frozenset(values),
            overdue=filters.overdue,
            reopened=filters.reopened,
            statuses_open=open_only(filters.status),
            sort=sort,
            cursor=None if cursor is None else "value" if value is not None else "null",
            recorded=in_statement,
        )
        page, count = reads.page(shape, values.get("q"))
        params |= {f"f_{name}": v for name, v in values.items()}
        params |= {"f_now": utcnow(), "page_limit": limit + 1}
        if in_statement:
            params |= reader_values(self.principal) | {"shown_limit": limit}
        connection = await self.session.connection()
        rows = (await connection.execute(page, params)).all()
        hidden, now = self._hidden(), utcnow()
        items = [reads.answer(row, self.principal, hidden, now) for row in rows[:limit]]
        if recorded and not in_statement:
            record_reads(self.session, self.principal, items, "list")
        next_cursor = encode_cursor(sort, items[-1]) if len(rows) > limit else None
        total = None
        if with_total:
            total = (await connection.execute(count, params)).scalar_one()
        return items, next_cursor, total

    def read(self, case: Case, via: str = "read") -> CaseRead:
        """The case as this caller may see it (the answer of a change); a person shown personal
        data is recorded."""
        row = [getattr(case, column.name) for column in reads.COLUMNS]
        hidden = self._hidden()
        if not hidden:
            record_reads(self.session, self.principal, [case], via)
        return CaseRead.model_validate(reads.answer(row, self.principal, hidden, utcnow()))

    def _hidden(self) -> bool:
        return not access.sees_personal_data(self.principal)

    def _records(self) -> tuple[bool, bool]:
        """Whether reads are recorded for this caller, and whether within the reading statement
        (PostgreSQL: an INSERT in its WITH clause) rather than at commit."""
        recorded = records_reads(self.principal)
        return recorded, recorded and self._dialect() == "postgresql"

    def _dialect(self) -> str:
        return self.session.bind.dialect.name

    # --- workflow ----------------------------------------------------------------------------

    async def _for_action(self, case_id: int, action: Action, if_match: int | None) -> Case:
        case = await self.get(case_id)
        if if_match is not None and if_match != case.version:
            raise PreconditionFailed(
                f"The case is at version {case.version}, not {if_match}; reload it and retry",
                current_version=case.version,
            )
        needed = TRANSITIONS[action].scope
        if needed == "cases:answer" and case.agency_id != self.principal.agency_id:
            raise Forbidden("The case is not assigned to your agency (any more)")
        return case

    async def act(self, case_id: int, action: Action, body: Any, if_match: int | None) -> Case:
        case = await self._for_action(case_id, action, if_match)
        before = case.status
        target = target_status(action, before)
        handler = getattr(self, f"_do_{action.name}")
        await handler(case, body)
        if action is not Action.assign and action is not Action.reopen:
            case.status = target
        case.updated_at = utcnow()
        self.session.add(case)
        await self.session.flush()
        return case

    async def _grant(self, case: Case, agency_ids) -> None:
        known = set(
            (
                await self.session.execute(
                    select(CaseAgency.agency_id).where(CaseAgency.case_id == case.id)
                )
            ).scalars()
        )
        for agency_id in dict.fromkeys(agency_ids):
            if agency_id not in known:
                self.session.add(CaseAgency(case_id=case.id, agency_id=agency_id))

    async def _policy_for(self, case: Case):
        """The deadline policy of the case: the one routing or a previous assignment chose,
        else the most specific one for its kind, regime, priority and sector."""
        return await select_policy(
            self.session,
            kind=case.kind,
            legal_regime=case.legal_regime,
            priority=case.priority,
            sector_id=await sector_of(self.session, case.category_id),
            policy_id=case.deadline_policy_id,
        )

    async def _assign(
        self,
        case: Case,
        agency_id: int,
        principal: Principal | None,
        *,
        action: str = "assign",
        reason: str | None = None,
        comment: str | None = None,
    ) -> None:
        await self._grant(case, [agency_id])
        step = await self._apply_assignment(case, agency_id, registered_at=case.created_at)
        self.session.add(_event(case, principal, action, reason=reason, comment=comment, **step))

    async def _apply_assignment(
        self, case: Case, agency_id: int, *, registered_at: datetime
    ) -> dict[str, Any]:
        """Give the case to the agency and set its deadline; returns the event's fields."""
        now = utcnow()
        before_status, before_agency = case.status, case.agency_id
        case.status, case.agency_id, case.assigned_at = CaseStatus.assigned, agency_id, now
        policy = await self._policy_for(case)
        if policy is not None:
            calendar = await production_calendar(self.session, self.settings)
            case.deadline_policy_id = policy.id
            case.due_at = due_from(calendar, policy, registered_at=registered_at, now=now)
        return {
            "from_status": before_status,
            "to_status": CaseStatus.assigned,
            "from_agency_id": before_agency,
            "to_agency_id": agency_id,
            "data": {"due_at": case.due_at.isoformat() if case.due_at else None},
        }

    async def _active_agency(self, agency_id: int) -> int:
        agency = await resolve(self.session, Agency, agency_id, "agency_id")
        return agency.id

    async def _do_assign(self, case: Case, body: AssignBody) -> None:
        await self._assign(
            case, await self._active_agency(body.agency_id), self.principal, comment=body.comment
        )

    def _record(self, case: Case, action: Action, **kw: Any) -> None:
        self.session.add(
            _event(
                case,
                self.principal,
                action.value,
                from_status=case.status,
                to_status=TRANSITIONS[action].target,
                from_agency_id=case.agency_id,
                to_agency_id=case.agency_id,
                **kw,
            )
        )

    async def _first_response(self, case: Case, now: datetime | None = None) -> None:
        if case.first_response_at is None:
            case.first_response_at = now or utcnow()
            case.first_response_seconds, case.first_response_working_seconds = await elapsed(
                self.session, self.settings, case.created_at, case.first_response_at
            )

    async def _do_accept(self, case: Case, body) -> None:
        self._record(case, Action.accept, comment=body.comment if body else None)

    async def _do_interim_answer(self, case: Case, body: InterimAnswerBody) -> None:
        await self._first_response(case)
        case.interim_answer = body.text
        case.interim_planned_date = body.planned_date.isoformat()
        policy = await self._policy_for(case)
        before_due = case.due_at
        if policy is not None:
            calendar = await production_calendar(self.session, self.settings)
            new_due = due_after_interim(calendar, policy, now=utcnow())
            if new_due is not None:
                case.due_at = new_due
        self._record(
            case,
            Action.interim_answer,
            comment=body.text,
            data={"planned_date": body.planned_date.isoformat()},
            changes=_changes({"due_at": (before_due, case.due_at)}),
        )

    async def _do_close(self, case: Case, body: CloseBody) -> None:
        now = utcnow()
        await self._first_response(case, now)
        case.final_answer = body.answer
        case.resolution = body.resolution
        case.responsible_official = body.responsible_official
        case.closed_at = now
        case.close_seconds, case.close_working_seconds = await elapsed(
            self.session, self.settings, case.created_at, now
        )
        self._record(
            case,
            Action.close,
            reason=body.resolution,
            comment=body.answer,
            data={"responsible_official": body.responsible_official},
        )

    async def _do_return_(self, case: Case, body: ReturnBody) -> None:
        await self._first_response(case)
        self._record(case, Action.return_, reason=body.reason, comment=body.comment)

    async def _do_reject(self, case: Case, body: RejectBody) -> None:
        if body.duplicate_of is not None:
            if body.duplicate_of == case.id:
                raise InvalidReference(
                    "duplicate_of", "duplicate_of: a case cannot duplicate itself"
                )
            original = await self.session.execute(
                select(Case.id).where(Case.id == body.duplicate_of, access.visible(self.principal))
            )
            if original.first() is None:
                raise InvalidReference("duplicate_of", f"duplicate_of: no case {body.duplicate_of}")
            case.duplicate_of_id = body.duplicate_of
        self._record(
            case,
            Action.reject,
            reason=body.reason,
            comment=body.comment,
            data={"duplicate_of": body.duplicate_of} if body.duplicate_of else None,
        )

    async def _do_reopen(self, case: Case, body: ReopenBody) -> None:
        agency_id = body.agency_id or case.agency_id
        if agency_id is None:
            raise InvalidReference(
                "agency_id", "agency_id: the case was never assigned; name the agency"
            )
        agency_id = await self._active_agency(agency_id)
        case.reopen_count += 1
        case.closed_at = case.close_seconds = case.close_working_seconds = None
        await self._assign(
            case,
            agency_id,
            self.principal,
            action="reopen",
            reason=body.reason,
            comment=body.comment,
        )

    # --- operator edits ----------------------------------------------------------------------

    async def edit(self, case_id: int, data: CaseEdit, if_match: int | None) -> Case:
        case = await self._for_action(case_id, Action.assign, if_match)
        if case.status not in OPEN_STATUSES:
            raise Conflict(f"Only open cases can be edited; this one is {case.status}")
        changes = data.model_dump(exclude_unset=True, exclude={"comment"})
        if "category_id" in changes:
            await _category_and_sector(self.session, changes["category_id"])
        if "territory_id" in changes:
            await resolve(self.session, Territory, changes["territory_id"], "territory_id")
        diff = {k: (getattr(case, k), v) for k, v in changes.items() if getattr(case, k) != v}
        if not diff:
            return case
        for key, (_, new) in diff.items():
            setattr(case, key, new)
        case.updated_at = utcnow()
        self.session.add(
            _event(
                case,
                self.principal,
                "edit",
                from_status=case.status,
                to_status=case.status,
                comment=data.comment,
                changes=_changes(diff),
            )
        )
        await self.session.flush()
        return case


def _changes(diff: dict[str, tuple[Any, Any]]) -> dict[str, Any] | None:
    def plain(v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else v

    out = {k: {"old": plain(a), "new": plain(b)} for k, (a, b) in diff.items() if a != b}
    return out or None
