"""The request id: taken from a sane `X-Request-ID`, or made up, and kept in a context variable
so every log line and problem body of the request can carry it."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
MAX_LENGTH = 128
# Printable ASCII without spaces: safe in a header, a log line and a JSON body.
_VALID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_LENGTH)

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()


def accepted_or_new(raw: bytes | None) -> str:
    """The caller's id when it is printable and at most 128 characters, else a new UUID4."""
    if raw is not None and _VALID.fullmatch(raw):
        return raw.decode("ascii")
    return str(uuid.uuid4())
