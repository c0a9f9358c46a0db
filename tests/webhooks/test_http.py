"""The deliveries' HTTP client against a scripted server on 127.0.0.1: keep-alive, the answers
HTTP/1.1 allows (chunked, close-delimited, interim 1xx), long answers cut short, a keep-alive
connection the server closed, and answers that are not HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from app.webhooks.http import (
    MAX_REPLY_BYTES,
    InvalidRequest,
    Pool,
    ReadError,
    RemoteProtocolError,
)
from app.webhooks.ssrf import Target

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# What the server does with each request on a connection: the bytes to answer, or None to close
# the connection without answering.
Script = Callable[[int, int], bytes | None]  # (connection number, request number on it)


async def serve(script: Script, requests: Callable[[Pool, Target], Awaitable[None]]) -> list[int]:
    """Runs `requests` against a server playing `script`; returns the requests per connection."""
    counts: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = len(counts)
        counts.append(0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                counts[conn] += 1
                answer = script(conn, counts[conn])
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if answer.startswith(b"HTTP/1.0") or b"Connection: close" in answer:
                    break  # as a server does after such an answer
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = Target(f"http://hooks.test:{port}/in", "http", "hooks.test", port, "127.0.0.1", "/in")
    pool = Pool(per_origin=4, user_agent="test")
    try:
        await requests(pool, target)
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()
    return counts


async def post(pool: Pool, target: Target, headers=()):
    async with pool.slot(target):
        return await pool.post(target, list(headers), b'{"id": 1}')


def run(script: Script, requests) -> list[int]:
    return asyncio.run(serve(script, requests))


def test_one_connection_serves_request_after_request():
    async def five(pool, target):
        for _ in range(5):
            reply = await post(pool, target)
            assert (reply.status, reply.body) == (200, b"ok")

    assert run(lambda conn, n: OK, five) == [5]


def test_connection_close_and_close_delimited_answers_are_not_reused():
    answers = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",  # no length: the body runs to the close
        OK,
    ]

    async def three(pool, target):
        bodies = [(await post(pool, target)).body for _ in range(3)]
        assert bodies == [b"ok", b"until the end", b"ok"]

    def script(conn, n):
        answer = answers[conn]
        return answer if n == 1 else None

    assert run(script, three) == [1, 1, 1]


def test_chunked_answers_interim_answers_and_long_answers_cut_short():
    chunked = (
        b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n3\r\n...\r\n0\r\n\r\n"
    )
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    huge = b"x" * (MAX_REPLY_BYTES + 10)
    long = b"HTTP/1.1 500 No\r\nContent-Length: %d\r\n\r\n%s" % (len(huge), huge)
    answers = {1: chunked, 2: interim, 3: long}

    async def three(pool, target):
        first = await post(pool, target)
        assert (first.status, first.body) == (503, b"busy...")
        second = await post(pool, target)
        assert (second.status, second.body) == (200, b"ok")
        third = await post(pool, target)
        assert third.status == 500 and len(third.body) == MAX_REPLY_BYTES
        assert (await post(pool, target)).status == 200  # on a new connection

    def script(conn, n):
        return answers.get(n, OK) if conn == 0 else OK

    assert run(script, three) == [3, 1]


def test_a_keep_alive_connection_closed_by_the_server_is_replaced_once():
    async def two(pool, target):
        assert (await post(pool, target)).status == 200
        # The server closes the connection as the second request arrives, unanswered (its
        # idle timeout): the request goes again on a new connection.
        assert (await post(pool, target)).status == 200

    assert run(lambda conn, n: OK if (conn, n) != (0, 2) else None, two) == [2, 1]


def test_a_new_connection_closed_without_an_answer_is_an_error():
    async def one(pool, target):
        with pytest.raises(ReadError, match="closed the connection without answering"):
            await post(pool, target)

    assert run(lambda conn, n: None, one) == [1]


def test_an_answer_that_is_not_http_is_an_error():
    async def one(pool, target):
        with pytest.raises(RemoteProtocolError, match=r"not an HTTP/1\.x answer"):
            await post(pool, target)

    assert run(lambda conn, n: b"SSH-2.0-OpenSSH_9.6\r\n\r\n", one) == [1]


def test_line_breaks_cannot_smuggle_headers():
    async def none(pool, target):
        with pytest.raises(InvalidRequest):
            await post(pool, target, [("X-Event", "a\r\nX-Injected: 1")])

    assert run(lambda conn, n: OK, none) == []
