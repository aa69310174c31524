"""HTTP for the paper downloaders: a rate limiter, retries with capped jittered backoff, streamed downloads.

Only the standard library (``urllib.request``). Every request, retries included, first waits on the
:class:`RateLimiter`. Status 408/429/5xx and network failures (refused connection, timeout, a body cut short) are
retried up to ``RetryPolicy.retries`` times; a ``Retry-After`` header (seconds or an HTTP date) replaces the
backoff for that wait. Other statuses (404, 400 ...) fail at once. Only http(s) URLs are fetched, and redirects
are followed only to http(s) (urllib would also follow one to ``ftp://``).
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ALLOWED_SCHEMES = ("http", "https")
CHUNK = 1 << 16
SECRET_PARAMS = re.compile(r"(?i)\b(api_key)=[^&\s]*")


def redact(url: str) -> str:
    """``url`` with secret query values (``api_key``) hidden, for messages and logs.

    >>> redact("https://x/esearch.fcgi?db=pubmed&api_key=abc123&term=a")
    'https://x/esearch.fcgi?db=pubmed&api_key=***&term=a'
    """
    return SECRET_PARAMS.sub(r"\1=***", url)


class DownloadError(Exception):
    """A request that failed for good: a refused status, or a retryable failure after every retry.

    ``status`` is the last HTTP status (``None`` for a network failure); ``url`` has secrets redacted.
    """

    def __init__(self, url: str, reason: str, status: int | None = None, attempts: int = 1) -> None:
        self.url, self.reason, self.status, self.attempts = redact(url), reason, status, attempts
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"GET {self.url}: {reason}{tries}")


class RateLimiter:
    """At most one request per ``min_interval`` seconds (thread-safe); ``clock``/``sleep`` injectable for tests."""

    def __init__(self, min_interval: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval}")
        self.min_interval, self._clock, self._sleep = min_interval, clock, sleep
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until a request may start; return the seconds waited."""
        with self._lock:
            waited = 0.0
            if self._last is not None:
                while (remaining := self._last + self.min_interval - self._clock()) > 0:
                    self._sleep(remaining)
                    waited += remaining
            self._last = self._clock()
            return waited


@dataclass
class RetryPolicy:
    """How often and how long to wait between attempts.

    The wait before retry ``n`` (0-based) is ``d/2 + uniform(0, d/2)`` with ``d = min(cap, base * 2**n)``
    ("equal jitter": never less than half the exponential step, never more than the cap). A server's
    ``Retry-After`` replaces it, up to ``max_retry_after`` seconds.
    """

    retries: int = 4
    base: float = 1.0
    cap: float = 60.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base < 0 or self.cap < 0 or self.max_retry_after < 0:
            raise ValueError(f"RetryPolicy values must be >= 0, got {self}")

    def delay(self, retry: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        step = min(self.cap, self.base * 2**retry)
        return step / 2 + (rng or random).uniform(0, step / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: ``"7"`` or an HTTP date; ``None`` when absent or unreadable.

    >>> parse_retry_after("7"), parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    (7.0, 10.0)
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise DownloadError(req.full_url, f"refusing a redirect to a {scheme or 'scheme-less'} URL ({newurl})",
                                status=code)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Transient(Exception):
    """A failure worth retrying: a retryable status or a network error."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.retry_after = reason, status, retry_after


class HttpClient:
    """GET with a rate limiter and retries; :meth:`get` returns the body, :meth:`download` streams to a file."""

    def __init__(self, rate_limiter: RateLimiter, policy: RetryPolicy | None = None, timeout: float = 30.0,
                 user_agent: str = "minillm-download-papers/0.1", sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.rate_limiter, self.policy, self.timeout = rate_limiter, policy or RetryPolicy(), timeout
        self.user_agent, self._sleep, self._rng = user_agent, sleep, rng or random.Random()
        self._opener = urllib.request.build_opener(_HttpOnlyRedirects())
        self.requests = 0  # attempts made, retries included

    def get(self, url: str, params: dict[str, str] | None = None) -> bytes:
        """The body of ``url`` (with ``params`` as its query string); raises :class:`DownloadError`."""
        full = with_params(url, params)
        return self._with_retries(full, lambda response: response.read())

    def download(self, url: str, destination: Path) -> int:
        """Stream ``url`` into ``destination`` (a ``.part`` file the caller renames); return the bytes written.

        A body shorter than its ``Content-Length`` counts as a network failure (retried); on final failure the
        partial file is removed.
        """
        destination = Path(destination)

        def stream(response: http.client.HTTPResponse) -> int:
            expected = response.headers.get("Content-Length")
            written = 0
            with open(destination, "wb") as handle:
                while chunk := response.read(CHUNK):
                    handle.write(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            if expected is not None and expected.isdigit() and int(expected) != written:
                raise http.client.IncompleteRead(b"", int(expected) - written)
            return written

        try:
            return self._with_retries(url, stream)
        except BaseException:
            destination.unlink(missing_ok=True)
            raise

    def _with_retries(self, url: str, handle: Callable[[http.client.HTTPResponse], object]) -> Any:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise DownloadError(url, f"refusing a {scheme or 'scheme-less'} URL: only http(s) is fetched")
        attempts = self.policy.retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(url, handle)
            except _Transient as exc:
                if attempt + 1 >= attempts:
                    raise DownloadError(url, exc.reason, status=exc.status, attempts=attempts) from None
                delay = self.policy.delay(attempt, exc.retry_after, self._rng)
                log.info("%s: %s; retrying in %.1f s", redact(url), exc.reason, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(self, url: str, handle: Callable[[http.client.HTTPResponse], object]) -> object:
        self.rate_limiter.wait()
        self.requests += 1
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return handle(response)
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code} {exc.reason}"
            exc.close()
            if exc.code in RETRY_STATUSES:
                raise _Transient(reason, exc.code, parse_retry_after(exc.headers.get("Retry-After"))) from None
            raise DownloadError(url, reason, status=exc.code) from None
        except urllib.error.URLError as exc:
            raise _Transient(f"network error: {exc.reason}") from None
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            raise _Transient(f"network error: {type(exc).__name__} {exc}".strip()) from None


def with_params(url: str, params: dict[str, str] | None) -> str:
    """``url`` with ``params`` appended as a query string (values URL-encoded; ``None`` values dropped)."""
    if not params:
        return url
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}{'&' if '?' in url else '?'}{query}"
