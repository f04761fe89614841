"""What the local stand-in servers (``gdc-server``, ``pdc-server``) share: where they listen and the faults
they can inject, as the same options with the same words on both commands."""

from __future__ import annotations

import typer

from oncograph.sources.faults import FaultConfig

HOST = typer.Option("127.0.0.1", help="Interface to listen on.")
FAIL_RATE = typer.Option(0.0, help="Share of requests answered 500/502/503.")
LATENCY_MS = typer.Option(0.0, help="Delay before every answer, milliseconds.")
RATE_LIMIT = typer.Option(
    None, help="Requests per second across all clients; beyond it 429 with Retry-After."
)
TRUNCATE_RATE = typer.Option(0.0, help="Share of answers cut off mid-body.")
SEED = typer.Option(0, help="Seed of the fault injection's random draws.")


def port(default: int) -> int:
    """The ``--port`` option with ``default`` (0 picks a free one)."""
    option: int = typer.Option(default, help="Port to listen on (0 picks a free one).")
    return option


def faults(
    fail_rate: float, latency_ms: float, rate_limit: float | None, truncate_rate: float, seed: int
) -> FaultConfig:
    """The fault injection the options ask for (inactive by default)."""
    return FaultConfig(
        fail_rate=fail_rate,
        latency_ms=latency_ms,
        rate_limit=rate_limit,
        truncate_rate=truncate_rate,
        seed=seed,
    )
