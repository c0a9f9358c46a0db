from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, field_validator

from app.cases.models import CaseKind, Channel, Network, Priority
from app.core.schemas import Input, Output, Patch
from app.routing.text import MAX_KEYWORD_LENGTH, MAX_KEYWORDS, normalize

# Where a case came from: an incident's network or an appeal's channel.
RuleSource = enum.StrEnum("RuleSource", {s.value: s.value for s in [*Network, *Channel]})

MAX_TEXT = 10_000
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Position = Annotated[int, Field(ge=0, le=1_000_000, description="Rules run in (position, id)")]
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=2000)]


def _has_word(keyword: str) -> str:
    if not normalize(keyword):
        raise ValueError("a keyword needs at least one letter or digit")
    return keyword


Keyword = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_KEYWORD_LENGTH),
    AfterValidator(_has_word),
]

_ANY = "Empty: any"


class _RuleFields(Input):
    """Conditions (an empty list or null means "any") and actions."""

    kinds: list[CaseKind] = Field(default_factory=list, max_length=len(CaseKind))
    category_ids: list[Id] = Field(
        default_factory=list,
        max_length=200,
        description=f"Categories or sectors (a sector matches its subcategories). {_ANY}",
    )
    territory_ids: list[Id] = Field(default_factory=list, max_length=500, description=_ANY)
    sources: list[RuleSource] = Field(
        default_factory=list,
        max_length=len(RuleSource),
        description=f"Incident networks and appeal channels. {_ANY}",
    )
    keywords: list[Keyword] = Field(
        default_factory=list,
        max_length=MAX_KEYWORDS,
        description="Any of these in the text, in any word form (every word of a keyword "
        f"must occur). {_ANY}",
    )
    missing_person: bool | None = Field(default=None, description="Null: either")
    important: bool | None = Field(default=None, description="Null: either")

    agency_id: Id | None = Field(default=None, description="Assign the case to this agency")
    priority: Priority | None = None
    deadline_policy_id: Id | None = None
    notify_agency_ids: list[Id] = Field(default_factory=list, max_length=50)
    stop: bool = Field(default=True, description="Stop evaluating further rules when matched")


class RoutingRuleCreate(_RuleFields):
    name: RuleName
    description: Description | None = None
    position: Position | None = Field(default=None, description="Default: after the last rule")
    enabled: bool = True


class RoutingRuleUpdate(Patch):
    NOT_NULL = frozenset(
        {
            "name",
            "position",
            "enabled",
            "kinds",
            "category_ids",
            "territory_ids",
            "sources",
            "keywords",
            "notify_agency_ids",
            "stop",
        }
    )

    name: RuleName | None = None
    description: Description | None = None
    position: Position | None = None
    enabled: bool | None = None
    kinds: list[CaseKind] | None = Field(default=None, max_length=len(CaseKind))
    category_ids: list[Id] | None = Field(default=None, max_length=200)
    territory_ids: list[Id] | None = Field(default=None, max_length=500)
    sources: list[RuleSource] | None = Field(default=None, max_length=len(RuleSource))
    keywords: list[Keyword] | None = Field(default=None, max_length=MAX_KEYWORDS)
    missing_person: bool | None = None
    important: bool | None = None
    agency_id: Id | None = None
    priority: Priority | None = None
    deadline_policy_id: Id | None = None
    notify_agency_ids: list[Id] | None = Field(default=None, max_length=50)
    stop: bool | None = None


class RoutingRuleRead(Output):
    id: int
    name: str
    description: str | None
    position: int
    enabled: bool
    kinds: list[str]
    category_ids: list[int]
    territory_ids: list[int]
    sources: list[str]
    keywords: list[str]
    missing_person: bool | None
    important: bool | None
    agency_id: int | None
    priority: str | None
    deadline_policy_id: int | None
    notify_agency_ids: list[int]
    stop: bool
    created_at: datetime
    updated_at: datetime


# --- dry run ---------------------------------------------------------------------------------


class DryRunCase(Input):
    """A case as the intake would see it."""

    kind: CaseKind
    category_id: Id | None = None
    territory_id: Id | None = None
    network: Network | None = Field(default=None, description="Incidents only")
    channel: Channel | None = Field(default=None, description="Appeals only")
    text: str = Field(default="", max_length=MAX_TEXT)
    missing_person: bool = False
    important: bool = False

    @field_validator("network")
    @classmethod
    def _network_for_incidents(cls, value: Network | None, info: ValidationInfo):
        kind = info.data.get("kind")
        if value is not None and kind is not None and kind != CaseKind.incident:
            raise ValueError("network is for incidents only; appeals have a channel")
        return value

    @field_validator("channel")
    @classmethod
    def _channel_for_appeals(cls, value: Channel | None, info: ValidationInfo):
        kind = info.data.get("kind")
        if value is not None and kind is not None and kind != CaseKind.appeal:
            raise ValueError("channel is for appeals only; incidents have a network")
        return value

    @property
    def source(self) -> str | None:
        if self.network is not None:
            return self.network.value
        return self.channel.value if self.channel is not None else None


class DryRunDecision(Output):
    rule_id: int | None
    rule_name: str | None
    agency_id: int | None
    priority: str | None
    deadline_policy_id: int | None
    notify_agency_ids: list[int]
    reason: str


class DryRunCheck(Output):
    rule_id: int
    name: str
    position: int
    matched: bool
    reasons: list[str]


class DryRunResult(Output):
    decision: DryRunDecision
    checks: list[DryRunCheck]
