"""Swagger UI and ReDoc work in a closed network: every script, stylesheet and icon the pages
name is served by the app itself, with the right content type; no inline script (the docs'
CSP allows only the app's own files); the OAuth2 redirect page too; all off by a setting."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

CONTENT_TYPES = {"script": "text/javascript", "stylesheet": "text/css", "icon": "image/png"}


class Assets(HTMLParser):
    """Collects the URLs a page loads, and the bodies of scripts without src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (kind, url)
        self.inline: list[dict] = []
        self._open_inline: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.urls.append(("script", attrs["src"]))
            else:
                self._open_inline = {"type": attrs.get("type"), "id": attrs.get("id"), "text": ""}
        elif tag == "link" and attrs.get("href"):
            rel = attrs.get("rel", "")
            self.urls.append(("stylesheet" if "stylesheet" in rel else "icon", attrs["href"]))
        elif tag in ("img", "iframe") and attrs.get("src"):
            self.urls.append((tag, attrs["src"]))

    def handle_data(self, data):
        if self._open_inline is not None:
            self._open_inline["text"] += data

    def handle_endtag(self, tag):
        if tag == "script" and self._open_inline is not None:
            self.inline.append(self._open_inline)
            self._open_inline = None


def _assets(response) -> Assets:
    parser = Assets()
    parser.feed(response.text)
    return parser


@pytest.fixture
def http(bare_app):
    with TestClient(bare_app()) as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_every_asset_of_the_page_is_served_locally(http, page):
    response = http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assets = _assets(response)
    assert any(kind == "script" for kind, _ in assets.urls)
    for kind, url in assets.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
        asset = http.get(urljoin("http://testserver" + page, url))
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[kind]), (url, kind)
        assert len(asset.content) > 0
    # No script runs inline: only JSON data blocks (not executed, so the CSP allows them).
    for block in assets.inline:
        assert block["type"] == "application/json", block


def test_the_bundles_are_the_real_ones(http):
    urls = dict((url.rsplit("/", 1)[-1], url) for _, url in _assets(http.get("/docs")).urls)
    assert b"SwaggerUIBundle" in http.get(urls["swagger-ui-bundle.js"]).content
    assert b"swagger-ui" in http.get(urls["swagger-ui.css"]).content
    redoc = dict((url.rsplit("/", 1)[-1], url) for _, url in _assets(http.get("/redoc")).urls)
    assert b"Redoc" in http.get(redoc["redoc.standalone.js"]).content


def test_swagger_ui_is_configured_for_our_schema_and_redirect(http):
    (config,) = [b for b in _assets(http.get("/docs")).inline if b["id"] == "swagger-config"]
    settings = json.loads(config["text"])
    assert settings["url"] == "/openapi.json"
    assert settings["oauth2RedirectUrl"] == "/docs/oauth2-redirect"
    assert settings["persistAuthorization"] is True
    assert settings["dom_id"] == "#swagger-ui"
    init = http.get("/docs/swagger-init.js").text
    assert "SwaggerUIBundle(config)" in init and "swagger-config" in init
    assert http.get("/openapi.json").json()["components"]["securitySchemes"]["OAuth2"]


def test_the_oauth2_redirect_script_is_swagger_uis(http):
    script = http.get("/docs/oauth2-redirect.js").text
    assert "swaggerUIRedirectOauth2" in script
    assert "<script" not in script


def test_docs_can_be_switched_off(bare_app):
    with TestClient(bare_app(docs_enabled=False), raise_server_exceptions=False) as http:
        for path in (
            "/docs",
            "/redoc",
            "/openapi.json",
            "/docs/oauth2-redirect",
            "/docs/oauth2-redirect.js",
            "/docs/swagger-init.js",
            "/docs/static/swagger-ui-bundle.js",
        ):
            assert http.get(path).status_code == 404, path
        assert http.get("/health/live").status_code == 200
