"""A small HTTP/1.1 client for webhook deliveries: POST a body to an address already checked,
read the status and the start of the reply, keep the connection for the next delivery there.

Why not httpx: profiling the worker (py-spy, 10,000 deliveries to a local receiver) put 80 %
of its time in httpx and httpcore — for every request the connection pool looks at each pooled
connection (a getpeername() and a poll() each), headers and body go out in separate writes, and
every response is logged. Deliveries need little of HTTP: one POST, no redirects (they count as
failures), no cookies, proxies or compression, a short reply. Here a request is one write, a
pooled connection is taken in O(1), and the reply is parsed with a few splits.

Connections are pooled per origin *and checked address*: a host that resolves elsewhere at the
next check gets a new connection to the new address (the SSRF check decides where we connect,
see app/webhooks/ssrf.py). At most `per_origin` requests are in flight to one origin (scheme,
host, port) at a time, whatever its addresses; callers wait their turn in `slot()`, which is
what keeps one slow receiver from holding every connection the worker has.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from dataclasses import dataclass

from app.webhooks.ssrf import Target

MAX_REPLY_BYTES = 64 * 1024  # receivers answer briefly; more is not read (and the socket closed)
MAX_HEAD_BYTES = 64 * 1024  # status line and headers
KEEPALIVE_SECONDS = 5.0  # an idle connection older than this is closed, not reused

Origin = tuple[str, str, int, str]  # scheme, address connected to, port, host (Host and SNI)


class HttpError(Exception):
    """A request that got no usable answer. str() is "<Kind>: <detail>", as the delivery's
    last_error shows it (ConnectError, WriteError, ReadError, RemoteProtocolError,
    InvalidRequest)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __str__(self) -> str:
        return f"{type(self).__name__}: {self.detail}"


class ConnectError(HttpError):
    pass


class WriteError(HttpError):
    pass


class ReadError(HttpError):
    pass


class RemoteProtocolError(HttpError):
    pass


class InvalidRequest(HttpError):
    pass


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes  # at most MAX_REPLY_BYTES of it

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def is_redirect(self) -> bool:
        return self.status in (301, 302, 303, 307, 308)


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float) -> bool:
        return (
            now - self.idle_since < KEEPALIVE_SECONDS
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Pool:
    """Keep-alive connections by origin and address; at most `per_origin` requests in flight to
    an origin (scheme, host, port), whichever of its addresses they go to."""

    def __init__(
        self, *, per_origin: int, user_agent: str, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.per_origin = per_origin
        self.user_agent = user_agent
        self._ssl_context = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._slots: dict[tuple[str, str, int], asyncio.Semaphore] = {}

    @staticmethod
    def origin(target: Target) -> Origin:
        return (target.scheme, target.address, target.port, target.host)

    def _pool(self, origin: Origin) -> deque[_Connection]:
        """The origin's idle connections, the most recently used last."""
        idle = self._idle.get(origin)
        if idle is None:
            idle = self._idle[origin] = deque()
        return idle

    def slot(self, target: Target) -> asyncio.Semaphore:
        """The origin's `per_origin` places: `async with pool.slot(target)` waits for one (do it
        outside any attempt timeout)."""
        key = (target.scheme, target.host.lower(), target.port)
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = asyncio.Semaphore(self.per_origin)
        return slots

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            import httpx  # the very CA bundle and settings httpx verifies with (certifi)

            self._ssl_context = httpx.create_ssl_context(trust_env=False)
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context

    async def _connect(self, target: Target) -> _Connection:
        tls = target.scheme == "https"
        try:
            reader, writer = await asyncio.open_connection(
                target.address,
                target.port,
                ssl=self._tls() if tls else None,
                server_hostname=target.host if tls else None,  # SNI and certificate name
                limit=MAX_HEAD_BYTES,
            )
        except ssl.SSLError as exc:
            raise ConnectError(f"TLS: {exc}") from None
        except OSError as exc:
            raise ConnectError(str(exc) or type(exc).__name__) from None
        return _Connection(reader, writer)

    async def post(self, target: Target, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """POSTs `body` to the target (its checked address, its host in Host and SNI). Call it
        inside `slot(target)`, under the caller's timeout."""
        request = _request(target, self.user_agent, headers, body)
        idle = self._pool(self.origin(target))
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # the most recently used: the likeliest to be alive
            if conn.usable(now):
                break
            conn.close()
        else:
            conn = None
        reused = conn is not None
        if conn is None:
            conn = await self._connect(target)
        try:
            try:
                reply, keep = await _exchange(conn, request)
            except _Stale:
                conn.close()
                if not reused:
                    raise ReadError("the server closed the connection without answering") from None
                # As a rule the server closed an idle connection just as we reused it, before
                # reading the request: send it once more on a new connection, as HTTP clients
                # do. (Had the server read it and then died, the event arrives twice: delivery
                # is at least once, and receivers dedupe by the event id.)
                conn = await self._connect(target)
                try:
                    reply, keep = await _exchange(conn, request)
                except _Stale:
                    raise ReadError("the server closed the connection without answering") from None
        except BaseException:
            conn.close()
            raise
        if keep:
            conn.idle_since = time.monotonic()
            idle.append(conn)
        else:
            conn.close()
        return reply

    def sweep(self) -> None:
        """Closes the idle connections past their keep-alive time (receivers gone quiet)."""
        now = time.monotonic()
        for idle in self._idle.values():
            while idle and not idle[0].usable(now):
                idle.popleft().close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()


class _Stale(Exception):
    """The connection ended before a single byte of the answer came back."""


def _request(target: Target, user_agent: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [
        f"POST {target.path} HTTP/1.1",
        f"Host: {target.host_header}",
        f"User-Agent: {user_agent}",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    if any("\r" in line or "\n" in line for line in lines):
        raise InvalidRequest("a line break in the URL or a header")
    try:
        return "\r\n".join(lines).encode("ascii") + b"\r\n\r\n" + body
    except UnicodeEncodeError:
        raise InvalidRequest("the URL or a header is not ASCII") from None


async def _exchange(conn: _Connection, request: bytes) -> tuple[Reply, bool]:
    """Sends the request, reads the answer; returns it and whether the connection may be
    reused. Raises _Stale when the connection closed before any of the answer came."""
    try:
        conn.writer.write(request)
        await conn.writer.drain()
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _Stale from exc
    except OSError as exc:
        raise WriteError(str(exc) or type(exc).__name__) from None
    first = True
    while True:
        try:
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if first and not exc.partial:
                raise _Stale from None
            raise ReadError("the connection closed in the middle of the answer") from None
        except asyncio.LimitOverrunError:
            raise RemoteProtocolError("the answer's headers are too long") from None
        except ConnectionResetError as exc:
            if first:
                raise _Stale from exc
            raise ReadError(str(exc)) from None
        except OSError as exc:
            raise ReadError(str(exc) or type(exc).__name__) from None
        first = False
        version, status, fields = _parse_head(head)
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue, 103 Early Hints: the answer follows
        break
    keep = version == "HTTP/1.1" and "close" not in fields.get("connection", "")
    if status in (204, 304) or status < 200:
        return Reply(status, b""), keep
    try:
        if "chunked" in fields.get("transfer-encoding", ""):
            body, complete = await _read_chunked(conn.reader)
        elif "content-length" in fields:
            try:
                length = int(fields["content-length"])
            except ValueError:
                raise RemoteProtocolError("an invalid Content-Length") from None
            if length < 0:
                raise RemoteProtocolError("an invalid Content-Length")
            body = await conn.reader.readexactly(min(length, MAX_REPLY_BYTES))
            complete = length <= MAX_REPLY_BYTES
        else:  # the body runs to the end of the connection
            body = b""
            while len(body) < MAX_REPLY_BYTES and (
                chunk := await conn.reader.read(MAX_REPLY_BYTES - len(body))
            ):
                body += chunk
            complete, keep = False, False
    except asyncio.IncompleteReadError:
        raise ReadError("the connection closed in the middle of the answer") from None
    except asyncio.LimitOverrunError:
        raise RemoteProtocolError("a malformed chunked answer") from None
    except OSError as exc:
        raise ReadError(str(exc) or type(exc).__name__) from None
    return Reply(status, body), keep and complete


def _parse_head(head: bytes) -> tuple[str, int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise RemoteProtocolError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise RemoteProtocolError(f"a malformed header line: {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip().lower() if key in ("connection", "transfer-encoding") else value
        fields[key] = f"{fields[key]}, {value}" if key in fields else value.strip()
    return parts[0], int(parts[1]), fields


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """The chunks up to MAX_REPLY_BYTES; complete is False when the rest was left unread."""
    body = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise RemoteProtocolError("a malformed chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body), True
        if len(body) + size > MAX_REPLY_BYTES:
            body += await reader.readexactly(MAX_REPLY_BYTES - len(body))
            return bytes(body), False
        body += await reader.readexactly(size)
        await reader.readexactly(2)
