"""``oncograph pdc-server``: serve real recorded PDC answers on a local PDC-compatible GraphQL endpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from oncograph.errors import OncographError
from oncograph.sources.pdc.standin import RecordedPdc, run_pdc_standin
from oncograph_cli.commands import stand_in
from oncograph_cli.output import console, exit_with_error


def pdc_server(
    data: Path = typer.Option(
        Path("data/pdc"), "--data", help="The recorded PDC responses and SDL (data/pdc, see its SOURCES.md)."
    ),
    host: str = stand_in.HOST,
    port: int = stand_in.port(8766),
    fail_rate: float = stand_in.FAIL_RATE,
    latency_ms: float = stand_in.LATENCY_MS,
    rate_limit: float | None = stand_in.RATE_LIMIT,
    truncate_rate: float = stand_in.TRUNCATE_RATE,
    seed: int = stand_in.SEED,
    fail_field: list[str] | None = typer.Option(
        None,
        "--fail-field",
        help="A root field (e.g. filesPerStudy) whose answers are GraphQL errors; repeat.",
    ),
) -> None:
    """Serve a local PDC-compatible GraphQL API (POST /graphql) from the recorded answers until Ctrl-C."""
    try:
        faults = stand_in.faults(fail_rate, latency_ms, rate_limit, truncate_rate, seed)
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
