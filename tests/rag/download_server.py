"""A local HTTP server for the download tests: scripted replies per path, every request recorded.

    with serve() as server:
        server.route("/api/query", Reply(429, headers={"Retry-After": "0"}), Reply(200, body))
        ... server.base_url ... server.requests ...

Replies for a route are used in order and the last one repeats. ``when`` picks a route by query parameters
(``when={"start": "2"}``). ``Reply.truncate_to`` announces the whole body's Content-Length but sends only that
many bytes and closes the connection (a download cut off mid-file). The server binds 127.0.0.1 on a free port
and the context manager always stops it.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(name: str, replace: dict[str, str] | None = None) -> bytes:
    """A fixture file's bytes, with each ``replace`` key swapped for its value (e.g. real hosts -> the server)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        text = text.replace(old, new)
    return text.encode("utf-8")


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    truncate_to: int | None = None


@dataclass
class Request:
    """What the server saw: the path and the query parameters (one value each)."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Route:
    path: str
    when: dict[str, str]
    replies: list[Reply]
    used: int = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply


class DownloadServer:
    """Routes and the request log; see the module docstring."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self._httpd = httpd
        self.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self.routes: list[_Route] = []
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    def route(self, path: str, *replies: Reply, when: dict[str, str] | None = None) -> None:
        """Answer GET ``path`` (with the ``when`` parameters, if given) with ``replies`` in turn."""
        self.routes.insert(0, _Route(path, when or {}, list(replies)))

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def reply_for(self, path: str, params: dict[str, str]) -> Reply:
        with self.lock:
            for route in self.routes:
                if route.path == path and all(params.get(k) == v for k, v in route.when.items()):
                    return route.next_reply()
        return Reply(404, b"not found")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        owner: DownloadServer = self.server.owner  # type: ignore[attr-defined]
        parts = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        with owner.lock:
            owner.requests.append(Request(parts.path, params, dict(self.headers)))
        reply = owner.reply_for(parts.path, params)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.truncate_to is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body if reply.truncate_to is None else reply.body[: reply.truncate_to])
        self.wfile.flush()
        if reply.truncate_to is not None:
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve() -> Iterator[DownloadServer]:
    """A running :class:`DownloadServer` on 127.0.0.1 (a free port), stopped on exit whatever happens."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    owner = DownloadServer(httpd)
    httpd.owner = owner  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield owner
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
