"""When to send an LLM request again, and how fast to send them at all.

The one place that retries: :func:`call_with_retries` re-sends a request that
failed in a way that can heal — HTTP 429 (honouring ``Retry-After`` /
``retry-after-ms``), 408/409/5xx, timeouts, dropped or refused connections — with
exponential backoff and full jitter, at most ``llm.max_retries`` times. Anything
else (400, a bad answer) is not retried here: validation failures are instructor's
re-asks, and 401/403/404 are configuration errors that retrying cannot fix.

:class:`MinuteLimiter` paces requests or tokens per minute on the client side, for
endpoints whose quota is known (``llm.requests_per_minute``/``tokens_per_minute``).

Example::

    policy = RetryPolicy(max_retries=5)
    response = await call_with_retries(lambda: client.completions.create(...), policy)
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Awaitable, Callable, TypeVar

import httpx
import openai

from ..errors import LLMError

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})
FATAL_STATUS = {401: "rejected the API key", 403: "refused access", 404: "does not know this model or path"}


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how patiently a failed request is re-sent."""

    max_retries: int = 5
    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0

    def backoff(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based).

        A server's ``Retry-After`` wins (capped at ``max_delay_s``, plus up to 10 %
        jitter so a burst of 429s does not come back in lockstep); otherwise full
        jitter over ``initial_delay_s * 2**retry``.
        """
        if retry_after is not None:
            return min(self.max_delay_s, retry_after) * (1 + 0.1 * random.random())
        return random.uniform(0, min(self.max_delay_s, self.initial_delay_s * 2**retry))


class LLMRequestFailed(LLMError):
    """One request kept failing after every retry (the chunk gets a reject row, the run goes on)."""

    def __init__(self, message: str, *, attempts: int, refused: bool = False):
        super().__init__(message)
        self.attempts = attempts
        self.refused = refused


def is_retryable(error: BaseException) -> bool:
    """Whether an openai error may heal on its own (rate limit, overload, network)."""
    if isinstance(error, openai.APIConnectionError):  # includes timeouts and dropped connections
        return True
    if isinstance(error, openai.APIStatusError):
        return error.status_code in RETRYABLE_STATUS or error.status_code >= 500
    return False


def is_connection_refused(error: BaseException) -> bool:
    """True when nothing listens at the URL (as opposed to a timeout or a dropped reply)."""
    if not isinstance(error, openai.APIConnectionError) or isinstance(error, openai.APITimeoutError):
        return False
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, (ConnectionRefusedError, httpx.ConnectError)):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def retry_after_seconds(error: BaseException) -> float | None:
    """The server's requested wait from ``retry-after-ms`` or ``Retry-After`` (seconds or a date)."""
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def describe_error(error: BaseException) -> str:
    """A short, key-free description of a failed request: ``HTTP 500``, ``timeout``, ..."""
    if isinstance(error, openai.APITimeoutError):
        return "timeout"
    if isinstance(error, openai.APIConnectionError):
        return "connection refused" if is_connection_refused(error) else "connection dropped"
    if isinstance(error, openai.APIStatusError):
        return f"HTTP {error.status_code}"
    return type(error).__name__


async def call_with_retries(
    send: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    url: str = "the LLM endpoint",
    retry_refused: bool = True,
    on_attempt: Callable[[], None] | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Await ``send()`` until it succeeds, retrying transient failures with backoff.

    Raises :class:`LLMRequestFailed` once ``policy.max_retries`` retries are spent
    (or at once for a refused connection when ``retry_refused`` is False: nothing
    has ever answered at that URL), and :class:`~domainfit.errors.LLMError` at once
    for 401/403/404, which no retry can fix.
    """
    retries = 0
    while True:
        if on_attempt is not None:
            on_attempt()
        try:
            return await send()
        except openai.APIStatusError as error:
            if error.status_code in FATAL_STATUS:
                raise LLMError(
                    f"the LLM endpoint {url} {FATAL_STATUS[error.status_code]} "
                    f"(HTTP {error.status_code}); check llm.model / llm.api_key / llm.base_url"
                ) from None
            last: BaseException = error
        except openai.APIError as error:
            last = error
        if not is_retryable(last):
            raise LLMRequestFailed(describe_error(last), attempts=retries + 1) from last
        refused = is_connection_refused(last)
        if retries >= policy.max_retries or (refused and not retry_refused):
            raise LLMRequestFailed(
                f"{describe_error(last)} after {retries + 1} attempt(s)", attempts=retries + 1, refused=refused
            ) from last
        delay = policy.backoff(retries, retry_after_seconds(last))
        if on_retry is not None:
            on_retry(last, delay)
        retries += 1
        await sleep(delay)


class MinuteLimiter:
    """A sliding one-minute window admitting at most ``per_minute`` units (requests or tokens).

    An amount larger than the whole limit is admitted alone once the window is
    empty, so an oversized request waits instead of blocking forever.

    Example::

        limiter = MinuteLimiter(60)      # one request per second on average
        await limiter.acquire(1)
    """

    def __init__(self, per_minute: float, *, window_s: float = 60.0):
        self.per_minute = per_minute
        self.window_s = window_s
        self._events: collections.deque[tuple[float, float]] = collections.deque()
        self._used = 0.0
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        while self._events and now - self._events[0][0] >= self.window_s:
            _, amount = self._events.popleft()
            self._used -= amount

    async def acquire(self, amount: float = 1.0) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._expire(now)
                if self._used + amount <= self.per_minute or not self._events:
                    self._events.append((now, amount))
                    self._used += amount
                    return
                await asyncio.sleep(self._events[0][0] + self.window_s - now + 1e-3)
