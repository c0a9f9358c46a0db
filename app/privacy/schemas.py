from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.core.schemas import Output


class PersonalDataAccessRead(Output):
    """One read: a person was shown the personal data of these cases at once (a case's page, a
    page of a list, an action's answer, an export)."""

    id: int
    case_ids: list[int] = Field(description="The cases whose personal data the read showed")
    actor: str
    actor_name: str
    actor_role: str
    via: str
    at: datetime


class PersonalDataAccessPage(BaseModel):
    """A page of the record, newest first. The record grows by a row for every read that shows
    personal data, so it is not counted unless asked (`with_total=true`): whether there is more
    is `next_offset`."""

    items: list[PersonalDataAccessRead]
    total: int | None = Field(default=None, description="Only with `with_total=true`")
    limit: int
    offset: int
    next_offset: int | None = Field(
        default=None,
        description=(
            "The offset of the next page; null on the last page. Offsets stop at 1,000,000: "
            "to read further back, narrow the period (at_from, at_to)"
        ),
    )
