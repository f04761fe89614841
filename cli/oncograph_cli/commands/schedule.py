"""``oncograph schedule ...``: the scheduled harvests (Prefect deployments defined in code)."""

from __future__ import annotations

import os
from typing import Any

import typer

from oncograph_cli.output import exit_with_error, out, print_json

app = typer.Typer(help="Scheduled ingestion (Prefect deployments).", no_args_is_help=True)


@app.command("list")
def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show every scheduled harvest: flow, cron (UTC), parameters and the next three runs."""
    from oncograph_flows.deployments import SCHEDULES

    rows: list[dict[str, Any]] = [
        {
            "name": s.name,
            "flow": s.flow().name,
            "cron": s.cron,
            "timezone": "UTC",
            "parameters": s.parameters,
            "description": s.description,
            "next_runs": s.next_runs(3),
        }
        for s in SCHEDULES
    ]
    if json_out:
        print_json(rows)
        return
    for r in rows:
        out.print(f"[bold]{r['name']}[/] ({r['flow']}) cron {r['cron']} UTC, next {r['next_runs'][0]}")
        out.print(f"    parameters {r['parameters']}")


@app.command("serve")
def serve_cmd() -> None:
    """Register the deployments with the Prefect server and run them on schedule until Ctrl-C."""
    if not os.environ.get("PREFECT_API_URL"):
        exit_with_error(
            "PREFECT_API_URL is not set: schedules need a running Prefect server",
            code=2,
        )
    from prefect import serve

    from oncograph_flows.deployments import deployments

    out.print(f"serving {len(deployments())} scheduled harvests against {os.environ['PREFECT_API_URL']}")
    serve(*deployments())
