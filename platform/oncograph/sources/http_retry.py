"""The one retry discipline of oncograph's HTTP source clients (GDC REST, PDC GraphQL).

**What is retried.** Timeouts and transport errors (refused or reset connections, a body shorter than its
Content-Length) always; an answer when the client's ``handle`` callback says so by returning :class:`Retry`:
by convention HTTP 429 and 5xx (:func:`is_retryable_status`) and broken bodies (JSON that does not parse, an
envelope without its data). Anything ``handle`` raises (a 4xx, a GraphQL error) propagates at once.

**How long it waits.** Up to ``max_attempts`` attempts in all. Before retry *n* (1-based) it waits a
full-jitter backoff, ``uniform(0, min(backoff_max_s, backoff_base_s * 2**(n-1)))``; when the answer carried
``Retry-After`` (seconds or an HTTP date) the wait is ``max(Retry-After, backoff)``, but never longer than
``backoff_max_s`` - a server asking for more gets an earlier retry rather than stalling a harvest.

**How it ends.** When every attempt failed, :class:`~oncograph.errors.SourceUnavailableError` names what was
asked, the attempts and the last failure, with the caller's hint.

The clock (``sleep``) and the jitter (``rng``) are injected, so tests record the waits and replay the draws.
A library (tenacity, stamina) would add a dependency for no fewer lines: the policy above needs the answer's
``Retry-After`` inside the wait computation and the per-client counters the harvest reports.

Example:
    >>> import httpx, random
    >>> replies = iter([httpx.Response(503), httpx.Response(200, json={"data": 1})])
    >>> retrier = Retrier(RetryPolicy(max_attempts=3), sleep=lambda s: None, rng=random.Random(0))
    >>> def handle(response: httpx.Response) -> object:
    ...     return Retry.for_status(response) if is_retryable_status(response.status_code) else response.json()
    >>> retrier.call(lambda: next(replies), handle, what="GET /x", hint="retry later")
    {'data': 1}
    >>> (retrier.attempts, retrier.retries)
    (2, 1)
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

import httpx

from oncograph.errors import SourceUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, and the bounds of the wait between them (the defaults equal the settings')."""

    max_attempts: int = 8
    """Attempts per request, the first included."""
    backoff_base_s: float = 0.5
    """Bound of the first retry's delay; doubles each retry (full jitter)."""
    backoff_max_s: float = 30.0
    """Upper bound of one delay, ``Retry-After`` included."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("backoff_base_s and backoff_max_s must be >= 0")

    def delay(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based), given the server's ``Retry-After``."""
        backoff = rng.uniform(0.0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry - 1)))
        wait = backoff if retry_after_s is None else max(retry_after_s, backoff)
        return min(wait, self.backoff_max_s)


@dataclass(frozen=True, slots=True)
class Retry:
    """An attempt that failed in a way another attempt may fix; ``handle`` returns it instead of a result."""

    failure: str
    """What went wrong, for the log and the final error."""
    retry_after_s: float | None = None
    """The server's ``Retry-After``, in seconds, when it sent one."""

    @classmethod
    def for_status(cls, response: httpx.Response, message: str | None = None) -> Retry:
        """``HTTP <status>: <message>`` with the response's ``Retry-After``."""
        return cls(
            f"HTTP {response.status_code}: {message or response.reason_phrase}",
            retry_after_seconds(response.headers.get("Retry-After")),
        )


def is_retryable_status(status: int) -> bool:
    """429 (rate limited) and every 5xx."""
    return status == 429 or status >= 500


def retry_after_seconds(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class Retrier:
    """Runs one request under a :class:`RetryPolicy` and counts attempts across requests.

    Attributes:
        attempts: HTTP attempts made so far (including retries).
        retries: attempts that were retries of a failed one.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """Args:
        policy: attempts and backoff bounds.
        sleep: how to wait between attempts (inject a recorder in tests).
        rng: jitter source (inject a seeded one in tests).
        """
        self.policy = policy
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.attempts = 0
        self.retries = 0

    def call(
        self,
        send: Callable[[], httpx.Response],
        handle: Callable[[httpx.Response], T | Retry],
        *,
        what: str,
        hint: str,
    ) -> T:
        """``handle(send())`` until it returns a result, retrying transport failures and :class:`Retry`.

        Args:
            send: makes one HTTP attempt.
            handle: turns an answer into the result, a :class:`Retry`, or an exception (not retried).
            what: the request in words, e.g. ``GDC POST https://…/cases``, for the log and the error.
            hint: what the user can do when every attempt failed.

        Raises:
            SourceUnavailableError: every attempt failed.
        """
        max_attempts = self.policy.max_attempts
        failure = ""
        for attempt in range(1, max_attempts + 1):
            self.attempts += 1
            outcome: T | Retry
            try:
                response = send()
            except httpx.TimeoutException as exc:
                outcome = Retry(f"timeout ({type(exc).__name__})")
            except httpx.TransportError as exc:
                outcome = Retry(f"connection error or broken body ({type(exc).__name__}: {exc})")
            else:
                outcome = handle(response)
            if not isinstance(outcome, Retry):
                return outcome
            failure = outcome.failure
            if attempt == max_attempts:
                break
            delay = self.policy.delay(attempt, outcome.retry_after_s, self._rng)
            self.retries += 1
            logger.warning(
                "%s failed (%s); retry %d of %d in %.2f s", what, failure, attempt, max_attempts - 1, delay
            )
            self._sleep(delay)
        raise SourceUnavailableError(
            f"{what} failed after {max_attempts} attempts; last failure: {failure}", hint=hint
        )


class RetryingClient:
    """The base of an HTTP source client: one httpx connection pool, one :class:`Retrier`, and what they count.

    Subclasses call :meth:`_connect` in ``__init__`` and send every request through ``self._retrier``.
    """

    _retrier: Retrier
    _http: httpx.Client

    def _connect(
        self,
        *,
        user_agent: str,
        timeout_s: float,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        rng: random.Random | None,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self._retrier = Retrier(policy, sleep=sleep, rng=rng)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            headers={"Accept": "application/json", "User-Agent": user_agent},
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def retry_policy(self) -> RetryPolicy:
        """Attempts and backoff bounds."""
        return self._retrier.policy

    @property
    def max_attempts(self) -> int:
        """Attempts per request, the first included."""
        return self._retrier.policy.max_attempts

    @property
    def backoff_base_s(self) -> float:
        """Bound of the first retry's delay."""
        return self._retrier.policy.backoff_base_s

    @property
    def backoff_max_s(self) -> float:
        """Upper bound of one retry delay."""
        return self._retrier.policy.backoff_max_s

    @property
    def attempts(self) -> int:
        """HTTP attempts made so far (including retries)."""
        return self._retrier.attempts

    @property
    def retries(self) -> int:
        """Attempts that were retries of a failed one."""
        return self._retrier.retries
