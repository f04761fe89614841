"""Fault injection for the local stand-ins (GDC mirror, PDC): errors, latency, rate limits, truncated bodies.

Each faultable request (for the GDC mirror everything except ``/status``, which stays healthy so that a client
can always learn the release it harvests) goes through :meth:`FaultInjector.decide`, in this order:

1. **rate limit** - a token bucket shared by all clients refills at ``rate_limit`` requests per second and holds
   at most ``rate_burst`` tokens (default: one second's worth). A request that finds no token gets ``429`` with
   ``Retry-After`` in whole seconds (at least 1).
2. **latency** - sleep ``latency_ms`` before answering.
3. **failure** - with probability ``fail_rate`` answer 500, 502 or 503 with a JSON error body.
4. **truncation** - with probability ``truncate_rate`` send the headers with the full ``Content-Length``, then
   only part of the body, then close the connection.

Random draws come from one ``random.Random(seed)`` behind a lock, so a single sequential client sees the same
fault sequence on every run.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from oncograph.errors import ConfigurationError

ERROR_STATUSES = (500, 502, 503)


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """What to inject. The defaults inject nothing."""

    fail_rate: float = 0.0
    latency_ms: float = 0.0
    rate_limit: float | None = None
    """Requests per second across all clients; None means unlimited."""
    rate_burst: float | None = None
    """Bucket capacity in requests; None means ``max(1, rate_limit)``."""
    truncate_rate: float = 0.0
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name in ("fail_rate", "truncate_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"{name} must be between 0 and 1, got {value}")
        if self.fail_rate + self.truncate_rate > 1.0:
            raise ConfigurationError("fail_rate + truncate_rate must not exceed 1")
        if self.latency_ms < 0:
            raise ConfigurationError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ConfigurationError(f"rate_limit must be > 0 requests/second, got {self.rate_limit}")
        if self.rate_burst is not None and self.rate_burst < 1:
            raise ConfigurationError(f"rate_burst must be >= 1, got {self.rate_burst}")

    @property
    def active(self) -> bool:
        """Whether any fault is configured."""
        return bool(self.fail_rate or self.latency_ms or self.rate_limit or self.truncate_rate)


@dataclass(slots=True)
class FaultCounters:
    """How many requests went through the injector and which faults they got."""

    requests: int = 0
    errors: int = 0
    rate_limited: int = 0
    truncated: int = 0
    delayed: int = 0
    by_status: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """A plain copy, for logs and benchmarks."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do with one request."""

    kind: Literal["ok", "error", "rate_limited", "truncate"]
    status: int = 200
    retry_after_s: int | None = None
    cut_fraction: float = 1.0
    """For ``truncate``: the share of the body that is sent."""


_OK = FaultDecision("ok")


class FaultInjector:
    """Decides the fault for each request and counts what it served. Thread-safe."""

    def __init__(
        self,
        config: FaultConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create an injector for ``config`` (default: no faults); ``clock``/``sleep`` are injectable for tests."""
        self.config = config or FaultConfig()
        self.counters = FaultCounters()
        self._rng = random.Random(self.config.seed)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        rate = self.config.rate_limit
        self._capacity = self.config.rate_burst or (max(1.0, rate) if rate else 0.0)
        self._tokens = self._capacity
        self._refilled_at = clock()

    def decide(self) -> FaultDecision:
        """Count one request and decide its fault; may sleep for the configured latency."""
        cfg = self.config
        with self._lock:
            self.counters.requests += 1
            retry_after = self._take_token() if cfg.rate_limit else None
            if retry_after is not None:
                self.counters.rate_limited += 1
                self._count_status(429)
                return FaultDecision("rate_limited", 429, retry_after_s=retry_after)
            draw = self._rng.random() if (cfg.fail_rate or cfg.truncate_rate) else 1.0
            status = self._rng.choice(ERROR_STATUSES) if draw < cfg.fail_rate else 200
            cut = (
                self._rng.uniform(0.05, 0.95)
                if cfg.fail_rate <= draw < cfg.fail_rate + cfg.truncate_rate
                else 1.0
            )
        if cfg.latency_ms > 0:
            with self._lock:
                self.counters.delayed += 1
            self._sleep(cfg.latency_ms / 1000.0)
        with self._lock:
            if status != 200:
                self.counters.errors += 1
                self._count_status(status)
                return FaultDecision("error", status)
            if cut < 1.0:
                self.counters.truncated += 1
                return FaultDecision("truncate", 200, cut_fraction=cut)
            self._count_status(200)
        return _OK

    def _take_token(self) -> int | None:
        rate = float(self.config.rate_limit or 0.0)
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - self._tokens) / rate))

    def _count_status(self, status: int) -> None:
        self.counters.by_status[status] = self.counters.by_status.get(status, 0) + 1
