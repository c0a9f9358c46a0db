"""A fast local webhook receiver for the worker benchmark: answers 204 to every POST and
counts them; `GET /count` returns the count as JSON. A raw ASGI app, so the receiver is not
the bottleneck."""

from __future__ import annotations

import json

_received = 0


async def app(scope, receive, send) -> None:
    global _received
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] == "GET" and scope["path"] == "/count":
        body = json.dumps({"received": _received}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    _received += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
