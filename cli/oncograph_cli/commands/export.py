"""``oncograph export COHORT_ID --to DEST``: an ML-ready dataset of a frozen cohort version.

Local folder, ``file:///path`` or ``s3://bucket/prefix`` (credentials from the environment;
``ONCOGRAPH_S3_ENDPOINT_URL`` for another endpoint). Published atomically: the destination appears complete or
not at all, and only a new or empty folder or an earlier export (with ``--overwrite``, and only when the folder
holds nothing but that export's files) is written. The destination is checked before anything runs. The export
is queued as a job like the API's (docs/adr/0005-export-jobs.md) and then run at once in this process with a
progress bar; ``--flow`` runs it as the Prefect flow ``export_cohort``.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from oncograph.access import Scope, ensure_local_principal
from oncograph.db import transaction
from oncograph.errors import OncographError
from oncograph.export.job import create_export, run_export
from oncograph.export.options import SEED_MAX, ExportOptions
from oncograph.export.schema import DEFAULT_STRATIFY, STRATIFY_FIELDS
from oncograph.settings import get_settings
from oncograph_cli.context import store
from oncograph_cli.output import console, exit_with_error, print_json


def export(
    cohort_id: int = typer.Argument(..., help="Cohort id (`oncograph cohort list`)."),
    to: str = typer.Option(..., "--to", help="A new or empty folder, file:///path, or s3://bucket/prefix."),
    version: int | None = typer.Option(None, "--version", help="Cohort version (default: the latest)."),
    split_by: list[str] = typer.Option(
        list(DEFAULT_STRATIFY),
        "--split-by",
        help=f"Stratify the train/val/test split by these patient fields ({', '.join(STRATIFY_FIELDS)}).",
    ),
    seed: int = typer.Option(
        0, "--seed", help=f"Split seed (0..{SEED_MAX}): the same seed gives the same split."
    ),
    ratios: str = typer.Option("0.7,0.15,0.15", "--ratios", help="train,val,test fractions (sum 1)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier oncograph export at --to (never other files)."
    ),
    tiles: bool = typer.Option(
        False,
        "--tiles",
        help="Also ship per-tile slide features for MIL: each slide's HDF5 feature file (verified against "
        "its recorded sha256; a missing or changed one fails the export) and a tile-level Parquet dataset, "
        "under tiles/<model>/.",
    ),
    flow: bool = typer.Option(False, "--flow", help="Run as the Prefect flow export_cohort."),
    json_out: bool = typer.Option(False, "--json", help="Print the manifest summary as JSON."),
) -> None:
    """Export a cohort version: Parquet tables, Croissant, manifests and patient-level splits."""
    try:
        parts = tuple(float(x) for x in ratios.split(","))
    except ValueError:
        exit_with_error(f"--ratios {ratios!r} is not three comma-separated numbers (e.g. 0.7,0.15,0.15)")
    try:
        options = ExportOptions(
            split_by=tuple(split_by),
            seed=seed,
            ratios=parts,  # type: ignore[arg-type]  # checked by ExportOptions
            overwrite=overwrite,
            tiles=tiles,
        )
        if flow:
            from oncograph_flows.export import export_cohort

            summary: dict[str, Any] = export_cohort(
                cohort_id=cohort_id, destination=to, options=options.to_record(), version=version
            )
        else:
            summary = _run(cohort_id, to, options, version, quiet=json_out)
    except OncographError as exc:
        exit_with_error(str(exc))
    except OSError as exc:  # recorded on the export; the user gets the reason, not a traceback
        exit_with_error(f"export failed: {exc}")
    if json_out:
        print_json(summary)
        return
    console.print(
        f"[bold green]exported[/] cohort {cohort_id} to {summary['destination']} (export {summary['export_id']}): "
        + ", ".join(f"{k} {v:,}" for k, v in summary["splits"].items())
    )


def _run(
    cohort_id: int, destination: str, options: ExportOptions, version: int | None, *, quiet: bool
) -> dict[str, Any]:
    factory = store()
    endpoint_url = get_settings().s3_endpoint_url
    # the destination is checked when the export is queued: a bad one exits here, with no export record
    with transaction(factory) as session:
        who = ensure_local_principal(session)
        row = create_export(
            session,
            cohort_id=cohort_id,
            principal=who,
            destination=destination,
            options=options,
            version=version,
            scope=Scope.everything(who.name),
            endpoint_url=endpoint_url,
        )
        export_id = row.id
    with Progress(
        TextColumn("[bold]export[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    ) as bar:
        task = bar.add_task("starting", total=10)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=max(total, done))

        # the job is queued like the API's; this process claims and runs it now (a worker would otherwise)
        result = run_export(factory, export_id, progress=progress, endpoint_url=endpoint_url)
    return {
        "export_id": result.export_id,
        "destination": result.destination,
        "row_counts": result.manifest["row_counts"],
        "splits": result.manifest["splits"],
        "member_hash": result.manifest["cohort"]["member_hash"],
        "files": result.manifest["files"],
    }
