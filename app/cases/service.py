"""Cases: intake with routing, the workflow actions, operator edits, reads. Only flushes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.auth.permissions import Role
from app.cases import access
from app.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseAgency,
    CaseEvent,
    CaseKind,
    CaseStatus,
    Priority,
)
from app.cases.queries import CaseFilters, apply_filters, encode_cursor, order_and_seek
from app.cases.schemas import (
    PERSONAL_FIELDS,
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
from app.cases.workflow import TRANSITIONS, Action, allowed_actions, target_status
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, InvalidReference, NotFound, PreconditionFailed
from app.core.pagination import count_of
from app.core.references import resolve
from app.core.types import utcnow
from app.deadlines.service import due_after_interim, due_from, production_calendar, select_policy
from app.reference.models import Agency, Category, Territory
from app.routing.engine import CaseFacts
from app.routing.service import route, sector_of

SYSTEM_ACTOR = ("system:routing", "Маршрутизация", "system")


@dataclass
class Intake:
    case: Case
    created: bool


def _actor(principal: Principal | None) -> tuple[str, str, str]:
    if principal is None:
        return SYSTEM_ACTOR
    return principal.subject, principal.name, principal.role.value


def _event(case: Case, principal: Principal | None, action: str, **kw: Any) -> CaseEvent:
    actor, name, role = _actor(principal)
    return CaseEvent(
        case_id=case.id, action=action, actor=actor, actor_name=name, actor_role=role, **kw
    )


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

    # --- intake ------------------------------------------------------------------------------

    async def submit(self, data: IncidentCreate | AppealCreate) -> Intake:
        incident = isinstance(data, IncidentCreate)
        source_system = self.principal.source_system or "operator"
        external_id = data.post_id if incident else data.number
        existing = await self._by_external_id(source_system, external_id)
        if existing is not None:
            return Intake(existing, created=False)

        _, sector_id = await _category_and_sector(self.session, data.category_id)
        await resolve(self.session, Territory, data.territory_id, "territory_id")
        fields = data.model_dump(mode="json", exclude={"post_id", "number"})
        if incident:
            fields["published_at"] = data.published_at
        case = Case(
            **fields,
            kind=CaseKind.incident if incident else CaseKind.appeal,
            status=CaseStatus.new,
            priority=Priority.normal,
            source_system=source_system,
            external_id=external_id,
            submitted_by=self.principal.subject,
        )
        if incident and data.missing_person:
            case.priority = Priority.urgent
        elif incident and data.important:
            case.priority = Priority.high
        try:
            async with self.session.begin_nested():  # a racing duplicate loses only this
                self.session.add(case)
                await self.session.flush()
        except IntegrityError:
            existing = await self._by_external_id(source_system, external_id)
            if existing is None:
                raise
            return Intake(existing, created=False)
        case.number = _number(case)
        self.session.add(_event(case, self.principal, "create", to_status=CaseStatus.new))

        facts = CaseFacts(
            kind=case.kind,
            category_id=case.category_id,
            sector_id=sector_id,
            territory_id=case.territory_id,
            source=case.network or case.channel,
            text=case.text,
            missing_person=case.missing_person,
            important=case.important,
        )
        decision = await route(self.session, facts)
        case.routing_reason = decision.reason
        case.routing_rule_id = decision.rule_id
        if decision.priority:
            case.priority = decision.priority
        case.deadline_policy_id = decision.deadline_policy_id
        if decision.notify_agency_ids:
            await self._grant(case, decision.notify_agency_ids)
            self.session.add(
                _event(
                    case,
                    None,
                    "notify",
                    data={"agency_ids": list(decision.notify_agency_ids)},
                    comment=decision.reason,
                )
            )
        if decision.agency_id is not None:
            agency = await self.session.get(Agency, decision.agency_id)
            if agency is not None and agency.is_active:
                await self._assign(case, agency.id, None, reason="routing", comment=decision.reason)
            else:
                case.routing_reason = (
                    f"{decision.reason}; agency {decision.agency_id} is inactive, left for triage"
                )
        await self.session.flush()
        return Intake(case, created=True)

    async def _by_external_id(self, source_system: str, external_id: str) -> Case | None:
        stmt = select(Case).where(
            Case.source_system == source_system, Case.external_id == external_id
        )
        return (await self.session.execute(stmt)).scalars().first()

    # --- reads -------------------------------------------------------------------------------

    async def get(self, case_id: int, kind: CaseKind | None = None) -> Case:
        stmt = select(Case).where(Case.id == case_id, access.visible(self.principal))
        if kind is not None:
            stmt = stmt.where(Case.kind == kind)
        case = (await self.session.execute(stmt)).scalars().first()
        if case is None:
            raise NotFound(f"No case with id {case_id}")
        return case

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
    ) -> tuple[list[Case], str | None, int | None]:
        category_ids = None
        if filters.category_id is not None:
            rows = await self.session.execute(
                select(Category.id).where(
                    (Category.id == filters.category_id)
                    | (Category.parent_id == filters.category_id)
                )
            )
            category_ids = list(rows.scalars())
        dialect = self.session.bind.dialect.name
        base = apply_filters(
            select(Case).where(access.visible(self.principal)), filters, category_ids, dialect
        )
        stmt = order_and_seek(base, sort, cursor).limit(limit + 1)
        rows = list((await self.session.execute(stmt)).scalars().all())
        next_cursor = encode_cursor(sort, rows[limit - 1]) if len(rows) > limit else None
        total = None
        if with_total:
            total = (await self.session.execute(count_of(base))).scalar_one()
        return rows[:limit], next_cursor, total

    def read(self, case: Case) -> CaseRead:
        data = case.model_dump()
        data["overdue"] = bool(
            case.due_at and case.status in OPEN_STATUSES and case.due_at < utcnow()
        )
        hidden = not access.sees_personal_data(self.principal)
        if hidden:
            for field in PERSONAL_FIELDS:
                data[field] = None
        data["personal_data_hidden"] = hidden
        data["allowed_actions"] = self._allowed(case)
        return CaseRead.model_validate(data)

    def _allowed(self, case: Case) -> list[str]:
        actions = allowed_actions(case.status, self.principal.scopes)
        if self.principal.role is Role.agency and case.agency_id != self.principal.agency_id:
            actions = [a for a in actions if TRANSITIONS[Action(a)].scope != "cases:answer"]
        return actions

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
        now = utcnow()
        before_status, before_agency = case.status, case.agency_id
        case.status, case.agency_id, case.assigned_at = CaseStatus.assigned, agency_id, now
        await self._grant(case, [agency_id])
        policy = await self._policy_for(case)
        if policy is not None:
            calendar = await production_calendar(self.session, self.settings)
            case.deadline_policy_id = policy.id
            case.due_at = due_from(calendar, policy, registered_at=case.created_at, now=now)
        self.session.add(
            _event(
                case,
                principal,
                action,
                from_status=before_status,
                to_status=CaseStatus.assigned,
                from_agency_id=before_agency,
                to_agency_id=agency_id,
                reason=reason,
                comment=comment,
                data={"due_at": case.due_at.isoformat() if case.due_at else None},
            )
        )

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

    def _first_response(self, case: Case) -> None:
        if case.first_response_at is None:
            case.first_response_at = utcnow()

    async def _do_accept(self, case: Case, body) -> None:
        self._record(case, Action.accept, comment=body.comment if body else None)

    async def _do_interim_answer(self, case: Case, body: InterimAnswerBody) -> None:
        self._first_response(case)
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
        self._first_response(case)
        case.final_answer = body.answer
        case.resolution = body.resolution
        case.responsible_official = body.responsible_official
        case.closed_at = utcnow()
        self._record(
            case,
            Action.close,
            reason=body.resolution,
            comment=body.answer,
            data={"responsible_official": body.responsible_official},
        )

    async def _do_return_(self, case: Case, body: ReturnBody) -> None:
        self._first_response(case)
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
        case.closed_at = None
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
