"""A pure-ASGI middleware that refuses request bodies over a byte limit with 413, without buffering them.

Why pure ASGI rather than a FastAPI dependency: the limit must hold before anything reads the body into memory.
A ``Content-Length`` over the limit is refused before the app runs; a body without one (chunked) is counted
chunk by chunk as the app reads it. Either way the rest of the body is read and discarded as it arrives (so the
client, still sending, gets the 413 instead of a reset connection), then 413 is sent in OpenAI's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
DEFAULT_MAX_REQUEST_BYTES = 1_000_000


class BodyTooLarge(HTTPException):
    """Raised into the app by the counting ``receive`` once the body passes the limit (the rest is drained)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the server's limit of {limit} bytes; "
                              "send less (the server's --max_request_bytes sets the limit)")


async def drain(receive: Receive) -> None:
    """Read and discard the rest of a request body (until its last chunk or the client's disconnect)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def send_json_error(send: Send, status: int, message: str, error_type: str,
                          extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send a complete JSON response with OpenAI's error body (``Connection: close``)."""
    body = json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": None}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close"), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """413 for a request body over ``max_bytes`` (see the module docstring); other requests pass untouched."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = BodyTooLarge(self.max_bytes)
        length = _content_length(scope)
        if length is not None and length > self.max_bytes:
            await drain(receive)
            await send_json_error(send, 413, too_large.detail, "request_too_large")
            return
        seen = 0
        finished = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen, finished
            message = await receive()
            if message["type"] == "http.request" and not finished:
                seen += len(message.get("body", b""))
                finished = not message.get("more_body", False)
                if seen > self.max_bytes:
                    if not finished:
                        await drain(receive)
                    finished = True
                    raise too_large
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await send_json_error(send, 413, too_large.detail, "request_too_large")
