from __future__ import annotations

from datetime import datetime

from app.core.schemas import Output


class PersonalDataAccessRead(Output):
    id: int
    case_id: int
    actor: str
    actor_name: str
    actor_role: str
    via: str
    at: datetime
