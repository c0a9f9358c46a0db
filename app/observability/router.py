"""GET /metrics: Prometheus text format, for the scraper inside the network."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.core.config import Settings, app_settings
from app.core.errors import NotFound, Unauthorized

router = APIRouter(tags=["operations"])


def _presented_token(request: Request) -> str | None:
    """The bearer token, or the password of HTTP Basic (Prometheus supports both)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics (requests by route, cases by status, overdue cases)",
    description=(
        "Prometheus text exposition format. When the service has a metrics token "
        "(`REGIONDESK_METRICS_TOKEN`), send it as a bearer token or as the HTTP Basic password; "
        "access tokens of the API are not accepted here."
    ),
    responses={
        401: {"description": "A metrics token is configured and was not presented"},
        404: {"description": "Metrics are switched off on this instance"},
    },
)
async def metrics(
    request: Request, settings: Annotated[Settings, Depends(app_settings)]
) -> Response:
    if not settings.metrics_served:
        raise NotFound("Metrics are not served by this instance")
    expected = settings.metrics_secret
    if expected is not None:
        presented = _presented_token(request)
        if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise Unauthorized("This endpoint needs the metrics token")
    body = await request.app.state.metrics.render(request.app.state.sessionmaker)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
