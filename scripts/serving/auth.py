"""``--api_key``: a pure-ASGI middleware requiring ``Authorization: Bearer KEY`` on every route but the open ones
(``/health``). A refusal is 401 in OpenAI's error shape, sent after the (size-limited) body is drained so the
client gets the answer rather than a reset; the key is compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from .body_limit import Receive, Send, drain, send_json_error

OPEN_PATHS = frozenset({"/health"})


def bearer_token(scope: dict[str, Any]) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, else None."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


class BearerAuthMiddleware:
    """401 unless the request carries ``Authorization: Bearer <api_key>`` (paths in ``open_paths`` excepted)."""

    def __init__(self, app: Callable[..., Awaitable[None]], api_key: str,
                 open_paths: frozenset[str] = OPEN_PATHS) -> None:
        if not api_key:
            raise ValueError("BearerAuthMiddleware needs a non-empty api_key")
        self.app, self.key, self.open_paths = app, api_key.encode(), open_paths

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        if token is not None and hmac.compare_digest(token.encode(), self.key):
            await self.app(scope, receive, send)
            return
        await drain(receive)
        why = "no 'Authorization: Bearer KEY' header" if token is None else "a wrong API key"
        await send_json_error(send, 401, f"the request has {why}; send the key the server was started with "
                                         "(--api_key)", "authentication_error",
                              [(b"www-authenticate", b"Bearer")])
