"""The shared retry discipline, without a server: scripted answers, a recorded clock and seeded jitter."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable, Iterator

import httpx
import pytest

from oncograph.errors import SourceUnavailableError
from oncograph.sources.http_retry import (
    Retrier,
    Retry,
    RetryPolicy,
    is_retryable_status,
    retry_after_seconds,
)

REQUEST = httpx.Request("GET", "http://stand-in/x")


def scripted(*outcomes: httpx.Response | Exception) -> Callable[[], httpx.Response]:
    it: Iterator[httpx.Response | Exception] = iter(outcomes)

    def send() -> httpx.Response:
        outcome = next(it)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return send


def handle(response: httpx.Response) -> str | Retry:
    if is_retryable_status(response.status_code):
        return Retry.for_status(response)
    if response.status_code >= 400:
        raise LookupError(response.status_code)
    return response.text


def retrier(policy: RetryPolicy, waits: list[float], seed: int = 0) -> Retrier:
    return Retrier(policy, sleep=waits.append, rng=random.Random(seed))


def test_transport_failures_and_retryable_statuses_are_retried_with_full_jitter() -> None:
    waits: list[float] = []
    r = retrier(RetryPolicy(max_attempts=5, backoff_base_s=1.0, backoff_max_s=100.0), waits)
    send = scripted(
        httpx.ConnectTimeout("slow", request=REQUEST),
        httpx.RemoteProtocolError("short body", request=REQUEST),
        httpx.Response(503),
        httpx.Response(429),
        httpx.Response(200, text="ok"),
    )
    assert r.call(send, handle, what="GET x", hint="h") == "ok"
    assert (r.attempts, r.retries) == (5, 4)
    jitter = random.Random(0)  # the same draws: uniform(0, base * 2**(n-1)) before retry n
    assert waits == [jitter.uniform(0.0, 2.0 ** (n - 1)) for n in range(1, 5)]


def test_retry_after_wins_over_a_shorter_backoff_but_never_exceeds_the_cap() -> None:
    waits: list[float] = []
    r = retrier(RetryPolicy(max_attempts=3, backoff_base_s=0.0, backoff_max_s=5.0), waits)
    send = scripted(
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(503, headers={"Retry-After": "3600"}),
        httpx.Response(200, text="ok"),
    )
    assert r.call(send, handle, what="GET x", hint="h") == "ok"
    assert waits == [2.0, 5.0]


def test_every_attempt_failing_names_the_request_attempts_last_failure_and_hint() -> None:
    waits: list[float] = []
    r = retrier(RetryPolicy(max_attempts=3, backoff_base_s=0.01), waits)
    send = scripted(httpx.Response(500), httpx.Response(502), httpx.Response(503))
    with pytest.raises(SourceUnavailableError) as caught:
        r.call(send, handle, what="GDC GET http://x/status", hint="retry later")
    message = str(caught.value)
    assert "GDC GET http://x/status failed after 3 attempts" in message
    assert "last failure: HTTP 503: Service Unavailable" in message
    assert caught.value.hint == "retry later"
    assert len(waits) == 2 and (r.attempts, r.retries) == (3, 2)  # no wait after the last attempt


def test_what_handle_raises_is_not_retried() -> None:
    waits: list[float] = []
    r = retrier(RetryPolicy(), waits)
    with pytest.raises(LookupError):
        r.call(scripted(httpx.Response(404)), handle, what="GET x", hint="h")
    assert (r.attempts, r.retries, waits) == (1, 0, [])


def test_handle_may_ask_for_a_retry_of_a_200() -> None:
    waits: list[float] = []
    r = retrier(RetryPolicy(max_attempts=2, backoff_base_s=0.0), waits)
    replies = iter(["{broken", '{"data": 1}'])

    def parse(response: httpx.Response) -> str | Retry:
        text = next(replies)
        return Retry("broken body") if text.startswith("{b") else text

    assert (
        r.call(scripted(httpx.Response(200), httpx.Response(200)), parse, what="x", hint="h") == '{"data": 1}'
    )
    assert r.retries == 1


def test_counters_add_up_across_calls() -> None:
    r = retrier(RetryPolicy(max_attempts=2, backoff_base_s=0.0), [])
    r.call(scripted(httpx.Response(500), httpx.Response(200)), handle, what="x", hint="h")
    r.call(scripted(httpx.Response(200)), handle, what="x", hint="h")
    assert (r.attempts, r.retries) == (3, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("7", 7.0), (" 1.5 ", 1.5), ("-3", 0.0), ("soon", None)],
)
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_is_relative_to_now() -> None:
    date = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert retry_after_seconds(date, now=lambda: 1_000_000.0) == 30.0
    assert retry_after_seconds(date, now=lambda: 2_000_000.0) == 0.0


def test_statuses_and_policy_bounds() -> None:
    assert [s for s in (200, 400, 404, 429, 500, 503, 599) if is_retryable_status(s)] == [429, 500, 503, 599]
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff_base_s=-1)
