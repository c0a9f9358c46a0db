"""Shared schema machinery: strict input models and the offset page used by reference lists."""

from __future__ import annotations

from typing import Annotated, ClassVar, Generic, TypeVar

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

NUL_MESSAGE = "may not contain the NUL character (U+0000)"


class Input(BaseModel):
    """Base for request bodies: unknown fields are refused (422), never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value):
        # PostgreSQL text cannot hold U+0000; refuse it as bad input rather than fail later.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(NUL_MESSAGE)
        return value


class Patch(Input):
    """Base for partial updates: only the fields sent are changed; `null` is refused for the
    fields named in NOT_NULL (it would mean "erase" where erasing is not allowed)."""

    NOT_NULL: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self):
        nulls = sorted(f for f in self.model_fields_set & self.NOT_NULL if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"may not be null: {', '.join(nulls)}")
        return self


async def refuse_nul_in_query(request: Request) -> None:
    """A router dependency: PostgreSQL text cannot hold U+0000, so a query parameter carrying
    it is bad input (422 naming it), as in bodies (Input), instead of a database error (500)."""
    raw = request.scope["query_string"]
    if b"%00" not in raw and b"\x00" not in raw:
        return  # no value can hold U+0000 (only %00 decodes to it): nothing to parse
    bad = [name for name, value in request.query_params.multi_items() if "\x00" in value]
    if bad:
        raise RequestValidationError(
            [
                {"loc": ("query", name), "msg": NUL_MESSAGE, "type": "value_error"}
                for name in dict.fromkeys(bad)
            ]
        )


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageParams(BaseModel):
    limit: int
    offset: int


MAX_PAGE_SIZE = 200
MAX_ID = 2**31 - 1  # ids are 32-bit INTEGER columns; PostgreSQL refuses larger parameters

IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="An id to filter by")]


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)
