"""Swagger UI and ReDoc with no internet access: their scripts, styles and icon are served by
the app itself (the bundles packaged by `fastapi-offline`), and the pages have no inline
script, so the documentation's Content-Security-Policy can say `script-src 'self'`."""

from __future__ import annotations

import html
import json
import re

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_oauth2_redirect_html,
    swagger_ui_default_parameters,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from app.core.config import Settings

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
STATIC_PREFIX = "/docs/static/"
DOCS_PAGES = frozenset({DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL})
_JS = "text/javascript; charset=utf-8"


def _inline_script(page: bytes) -> str:
    match = re.search(r"<script>(.*?)</script>", page.decode(), re.S)
    if match is None:
        raise RuntimeError("FastAPI's OAuth2 redirect page has no inline script any more")
    return match.group(1)


# Swagger UI's own redirect handshake, as FastAPI ships it, moved out of the inline <script>.
_OAUTH2_REDIRECT_JS = _inline_script(bytes(get_swagger_ui_oauth2_redirect_html().body))

_SWAGGER_INIT_JS = """\
window.addEventListener("load", function () {
  var config = JSON.parse(document.getElementById("swagger-config").textContent);
  config.presets = [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset];
  config.oauth2RedirectUrl = window.location.origin + config.oauth2RedirectUrl;
  window.ui = SwaggerUIBundle(config);
});
"""


def _swagger_page(title: str, root: str, config: dict) -> str:
    # The configuration travels as a JSON data block: data is not script, so CSP allows it.
    data = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e")
    static = root + STATIC_PREFIX
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - Swagger UI</title>
<link rel="stylesheet" type="text/css" href="{static}swagger-ui.css">
<link rel="icon" type="image/png" href="{static}favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script id="swagger-config" type="application/json">{data}</script>
<script src="{static}swagger-ui-bundle.js"></script>
<script src="{root}{DOCS_URL}/swagger-init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI, settings: Settings) -> None:
    """Serves /docs, /redoc, the OAuth2 redirect page and their assets (when docs are on)."""
    if not settings.docs_enabled:
        return
    app.mount(
        STATIC_PREFIX.rstrip("/"),
        StaticFiles(packages=[("fastapi_offline", "static")]),
        name="docs-static",
    )

    # The pages read the app from the request, not from this function's scope: FastAPI keeps
    # every endpoint it has classified in a process-wide cache, and an endpoint that closed
    # over its app would keep the app alive there, with its state and engine, long after it.
    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        served = request.app
        root = request.scope.get("root_path", "")
        config = {
            **swagger_ui_default_parameters,
            **(served.swagger_ui_parameters or {}),
            "url": root + (served.openapi_url or ""),
            "oauth2RedirectUrl": root + OAUTH2_REDIRECT_URL,
        }
        return HTMLResponse(_swagger_page(served.title, root, config))

    @app.get(DOCS_URL + "/swagger-init.js", include_in_schema=False)
    async def swagger_init() -> Response:
        return Response(_SWAGGER_INIT_JS, media_type=_JS)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return HTMLResponse(
            '<!doctype html>\n<html lang="en-US">\n<head><title>Swagger UI: OAuth2 Redirect'
            '</title></head>\n<body>\n<script src="oauth2-redirect.js"></script>\n</body>\n'
            "</html>\n"
        )

    @app.get(OAUTH2_REDIRECT_URL + ".js", include_in_schema=False)
    async def oauth2_redirect_js() -> Response:
        return Response(_OAUTH2_REDIRECT_JS, media_type=_JS)

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        served = request.app
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + (served.openapi_url or ""),
            title=served.title + " - ReDoc",
            redoc_js_url=root + STATIC_PREFIX + "redoc.standalone.js",
            redoc_favicon_url=root + STATIC_PREFIX + "favicon.png",
            with_google_fonts=False,
        )
