"""``oncograph pdc-server``: serve real recorded PDC answers on a local PDC-compatible GraphQL endpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from oncograph.errors import OncographError
from oncograph.sources.gdc.mirror import FaultConfig
from oncograph.sources.pdc.standin import RecordedPdc, run_pdc_standin
from oncograph_cli.output import console, exit_with_error


def pdc_server(
    data: Path = typer.Option(
        Path("data/pdc"), "--data", help="The recorded PDC responses and SDL (data/pdc, see its SOURCES.md)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8766, help="Port to listen on (0 picks a free one)."),
    fail_rate: float = typer.Option(0.0, help="Share of requests answered 500/502/503."),
    latency_ms: float = typer.Option(0.0, help="Delay before every answer, milliseconds."),
    rate_limit: float | None = typer.Option(
        None, help="Requests per second across all clients; beyond it 429 with Retry-After."
    ),
    truncate_rate: float = typer.Option(0.0, help="Share of answers cut off mid-body."),
    seed: int = typer.Option(0, help="Seed of the fault injection's random draws."),
    fail_field: list[str] | None = typer.Option(
        None,
        "--fail-field",
        help="A root field (e.g. filesPerStudy) whose answers are GraphQL errors; repeat.",
    ),
) -> None:
    """Serve a local PDC-compatible GraphQL API (POST /graphql) from the recorded answers until Ctrl-C."""
    try:
        faults = FaultConfig(
            fail_rate=fail_rate,
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            truncate_rate=truncate_rate,
            seed=seed,
        )
        if not data.is_dir():
            exit_with_error(f"{data} is not a directory; pass --data data/pdc")
        recorded = RecordedPdc.from_directory(data)
        counts = ", ".join(f"{field} {n}" for field, n in sorted(recorded.counts().items()))

        def ready(url: str) -> None:
            console.print(f"PDC stand-in serving recorded answers ({counts}); release {recorded.release!r}")
            if faults.active or fail_field:
                console.print(
                    f"fault injection: {faults}; failing fields: {fail_field or []}", highlight=False
                )
            console.print(f"set ONCOGRAPH_PDC_URL={url} (or pass --pdc-url) to ingest from it; Ctrl-C stops")
            typer.echo(url)

        run_pdc_standin(
            recorded,
            host=host,
            port=port,
            faults=faults,
            fail_fields=frozenset(fail_field or ()),
            on_ready=ready,
        )
    except (OncographError, ValueError) as exc:
        exit_with_error(str(exc))
    except OSError as exc:
        exit_with_error(f"cannot serve on {host}:{port}: {exc}")
    console.print("PDC stand-in stopped")
