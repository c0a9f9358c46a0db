"""Security headers on every response (a header the response set itself is kept).

API responses get a Content-Security-Policy that allows nothing; the documentation pages get
one that lets them load their own scripts and styles (served by the app, see app.core.docs_ui).
Responses are `Cache-Control: no-store` unless they say otherwise: they carry cases and
personal data, which no browser or proxy cache should keep."""

from __future__ import annotations

from collections.abc import Iterable

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc style elements inline (ReDoc's styled-components, Swagger's style
# attributes) and ReDoc's search runs in a blob: worker; every script is a file of ours.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"

Headers = list[tuple[bytes, bytes]]


class SecurityHeaders:
    """The headers every response gets, by path. Applied by the one outermost middleware
    (app.observability.middleware) to the start of every response, its own 500s included."""

    def __init__(
        self,
        *,
        production: bool,
        docs_pages: Iterable[str] = (),
        cacheable_prefixes: tuple[str, ...] = (),
    ) -> None:
        common: Headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        if production:  # over plain HTTP (dev) browsers ignore it anyway
            common.append((b"strict-transport-security", HSTS.encode()))
        self.api_headers = [*common, (b"content-security-policy", API_CSP.encode())]
        self.docs_headers = [*common, (b"content-security-policy", DOCS_CSP.encode())]
        self.docs_pages = frozenset(docs_pages)
        self.cacheable_prefixes = cacheable_prefixes

    def headers_for(self, path: str) -> tuple[Headers, bool]:
        headers = self.docs_headers if path in self.docs_pages else self.api_headers
        return headers, not path.startswith(self.cacheable_prefixes)

    def add(self, headers: Headers, path: str) -> None:
        """Adds to a response's headers (in place) those it does not set itself."""
        extra, no_store = self.headers_for(path)
        present = {key.lower() for key, _ in headers}
        headers.extend(h for h in extra if h[0] not in present)
        if no_store and b"cache-control" not in present:
            headers.append((b"cache-control", b"no-store"))
