"""The acquirer's chargeback API as Dagster sees it: where it is, its token, and how patiently to read it.

An API that pages, rate-limits and fails now and then is read page by page with retries: a 429 waits what its
Retry-After says, a 5xx, a timeout, a dropped connection or a 200 whose body is not a page (garbage) waits an
exponential backoff with jitter, each page at most `max_retries` times and the whole read at most
`max_total_seconds`, then it fails with an error that says what came back. Any other 4xx (a bad token, a cursor
the API does not know) fails at once: retrying cannot help. Garbage bodies are handed back with the pages, so the
caller keeps them in the quarantine: nothing the API said is dropped silently.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import dagster as dg
from pydantic import Field

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# A garbage body is kept for the quarantine up to this many characters.
GARBAGE_CHARS_KEPT = 65_536


class ChargebackApiError(RuntimeError):
    """The API could not be read: retries or time exhausted, or an answer retrying cannot fix."""


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None
    has_more: bool


@dataclass(frozen=True)
class Garbage:
    """A 200 whose body was not a page: what came back, and the cursor it answered."""

    cursor: str | None
    attempt: int
    body: str


@dataclass
class Fetched:
    """Everything one read brought: the pages in order (each with the cursor it was asked with), the garbage that
    retries replaced, and the retries by cause ("429", "500", "timeout", "connect", "garbage", ...)."""

    pages: list[tuple[str | None, Page]] = field(default_factory=list)
    garbage: list[Garbage] = field(default_factory=list)
    retries: Counter = field(default_factory=Counter)
    requests: int = 0
    seconds: float = 0.0

    @property
    def items(self) -> int:
        return sum(len(p.items) for _, p in self.pages)


def parse_page(body: bytes) -> Page | None:
    """The page in `body`, or None when it is not one (not JSON, or JSON of another shape)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list) or not isinstance(doc.get("has_more"), bool):
        return None
    cursor = doc.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        return None
    if doc["data"] and cursor is None:
        return None
    return Page(items=doc["data"], next_cursor=cursor, has_more=doc["has_more"])


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_seconds(attempt: int, base: float, cap: float, draw: float) -> float:
    """Exponential backoff with "equal jitter": half of base * 2^(attempt-1) (capped) plus a random half, so many
    clients retrying at once spread out. `draw` is uniform in [0, 1)."""
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return ceiling / 2 + ceiling / 2 * draw


class ChargebackApi(dg.ConfigurableResource):
    url: str = Field(default="http://127.0.0.1:8002", description="Base URL of the chargeback API")
    token: str | None = Field(default=None, description="Bearer token (PLATFORM_CHARGEBACK_API_TOKEN), if required")
    page_limit: int = Field(default=500, ge=1, le=500, description="Items asked for per page")
    connect_timeout_seconds: float = 3.0
    read_timeout_seconds: float = Field(default=10.0, description="A page slower than this is retried")
    max_retries: int = Field(default=8, ge=0, description="Retries of one page before the read fails")
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    max_total_seconds: float = Field(default=600.0, description="The whole read, retries and waits included")
    max_page_bytes: int = Field(default=8 * 1024 * 1024, description="A longer answer is refused as garbage")

    def read(self, cursor: str | None, reported_before: datetime,
             on_page: Callable[[Fetched], None] | None = None) -> Fetched:
        """Every page after `cursor` up to (not including) `reported_before`. Raises ChargebackApiError when a
        page cannot be had within the retry and time budgets; nothing is returned then, so nothing is loaded."""
        import httpx  # here, not at import: Definitions load without the HTTP client

        fetched = Fetched()
        started = time.monotonic()
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        timeout = httpx.Timeout(self.read_timeout_seconds, connect=self.connect_timeout_seconds)
        bound = reported_before.astimezone(UTC).isoformat().replace("+00:00", "Z")
        with httpx.Client(base_url=self.url.rstrip("/"), headers=headers, timeout=timeout) as client:
            while True:
                page = self._page(client, cursor, bound, fetched, started)
                fetched.pages.append((cursor, page))
                if on_page is not None:
                    on_page(fetched)
                if not page.has_more or not page.items:
                    break
                if page.next_cursor == cursor:
                    raise ChargebackApiError(f"{self.url} handed back the cursor it was asked with ({cursor!r}) "
                                             "on a page with items: it would be read forever")
                cursor = page.next_cursor
                if time.monotonic() - started > self.max_total_seconds:
                    raise ChargebackApiError(f"reading {self.url} took over max_total_seconds="
                                             f"{self.max_total_seconds} ({len(fetched.pages)} pages): nothing loaded")
        fetched.seconds = time.monotonic() - started
        return fetched

    def _page(self, client, cursor: str | None, bound: str, fetched: Fetched, started: float) -> Page:
        import httpx

        params = {"limit": self.page_limit, "reported_before": bound, **({"cursor": cursor} if cursor else {})}
        failures: list[str] = []
        for attempt in range(1, self.max_retries + 2):
            fetched.requests += 1
            wait = None
            try:
                with client.stream("GET", "/v1/chargebacks", params=params) as response:
                    body = self._bounded_body(response)
                    status = response.status_code
                    retry_after = response.headers.get("retry-after")
            except httpx.TimeoutException as exc:
                cause, detail = "timeout", f"{type(exc).__name__} after {self.read_timeout_seconds} s"
            except httpx.TransportError as exc:
                cause, detail = "connect", f"{type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    page = parse_page(body) if body is not None else None
                    if page is not None:
                        return page
                    text = (body or b"").decode("utf-8", errors="backslashreplace")[:GARBAGE_CHARS_KEPT]
                    fetched.garbage.append(Garbage(cursor, attempt, text or "<over max_page_bytes>"))
                    cause, detail = "garbage", f"200 with a body that is not a page: {text[:120]!r}"
                elif status in RETRYABLE_STATUS:
                    cause, detail = str(status), f"HTTP {status}"
                    if status == 429:
                        wait = retry_after_seconds(retry_after)
                else:
                    raise ChargebackApiError(
                        f"{self.url} answered HTTP {status} for cursor {cursor!r}: "
                        f"{(body or b'')[:300].decode('utf-8', errors='replace')} (not retried: "
                        f"{'check PLATFORM_CHARGEBACK_API_TOKEN' if status in (401, 403) else 'a client error'})")
            failures.append(detail)
            if attempt > self.max_retries:
                break
            if wait is None:
                wait = backoff_seconds(attempt, self.backoff_base_seconds, self.backoff_max_seconds, random.random())
            if time.monotonic() - started + wait > self.max_total_seconds:
                raise ChargebackApiError(
                    f"reading {self.url} would exceed max_total_seconds={self.max_total_seconds}: page after "
                    f"cursor {cursor!r} failed {len(failures)} time(s), last: {failures[-1]}")
            fetched.retries[cause] += 1
            time.sleep(wait)
        raise ChargebackApiError(
            f"gave up on {self.url} after {len(failures)} attempts at the page after cursor {cursor!r} "
            f"(max_retries={self.max_retries}): {'; '.join(failures[-3:])}")

    def _bounded_body(self, response) -> bytes | None:
        """The body, or None past max_page_bytes (read no further)."""
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_page_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

