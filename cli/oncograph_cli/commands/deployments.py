"""``oncograph deployments ...``: the flows as deployments on a Prefect work pool (the scale-out form of
``oncograph schedule serve``; see :mod:`oncograph_flows.work_pool`)."""

from __future__ import annotations

from pathlib import Path

import typer

from oncograph.errors import OncographError
from oncograph_cli.output import exit_with_error, out, print_json, safe

app = typer.Typer(help="Prefect work-pool deployments (harvests, embed, export).", no_args_is_help=True)


@app.command("register")
def register_cmd(
    work_pool: str = typer.Option(..., "--work-pool", "-p", help="The Prefect work pool the workers poll."),
    image: str | None = typer.Option(
        None, "--image", help="Image each run starts in (kubernetes, docker, ecs pools); none for process."
    ),
    source: Path | None = typer.Option(
        None,
        "--source",
        help="A checkout of this repository on the workers' disk to run the flows from (default: the "
        "installed package).",
    ),
    create_pool: bool = typer.Option(
        False, "--create-pool", help="Create the work pool, of type process, when it does not exist."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Register the scheduled harvests, embed and export flows as deployments on a Prefect work pool.

    Needs PREFECT_API_URL. Workers started with `prefect worker start --pool NAME` run them, with the
    worker's environment (ONCOGRAPH_DATABASE_URL, ONCOGRAPH_FEATURES_ROOT, RAY_ADDRESS ...). Registering
    again updates the deployments in place.
    """
    from oncograph_flows.work_pool import register_on_work_pool

    try:
        pool, registered = register_on_work_pool(
            work_pool, image=image, source=source, create_pool=create_pool
        )
    except OncographError as exc:
        exit_with_error(str(exc), code=2)
    if json_out:
        print_json(
            {
                "work_pool": {"name": pool.name, "type": pool.type, "created": pool.created},
                "deployments": [r.to_json() for r in registered],
            }
        )
        return
    created = " (created)" if pool.created else ""
    out.print(f"work pool [bold]{safe(pool.name)}[/] ({safe(pool.type)}){created}:")
    for r in registered:
        when = f"cron {r.cron} UTC" if r.cron else "on demand"
        out.print(f"  {safe(r.deployment)}  {when}  {safe(r.entrypoint)}")
    out.print(f"start a worker: prefect worker start --pool {safe(pool.name)}")
