from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from app.core.errors import problem

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="The service can reach its database",
    responses={503: {"description": "The database is unreachable"}},
)
async def ready(request: Request):
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any driver or network failure means "not ready"
        return problem(503, "The database is not reachable", code="not-ready")
    return {"status": "ok", "database": "ok"}
