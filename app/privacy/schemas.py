from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.core.schemas import Output


class PersonalDataAccessRead(Output):
    id: int
    case_id: int
    actor: str
    actor_name: str
    actor_role: str
    via: str
    at: datetime


class PersonalDataAccessPage(BaseModel):
    """A page of the record, newest first. The record grows by a row for every case shown
    with its personal data, so it is not counted unless asked (`with_total=true`): whether
    there is more is `next_offset`."""

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
