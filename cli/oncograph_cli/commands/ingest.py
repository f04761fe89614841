"""``oncograph ingest ...``: harvest the GDC API, import GDC portal downloads."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from oncograph.errors import OncographError
from oncograph.ingest.harvest import harvest_gdc
from oncograph.ingest.portal_import import import_portal_files
from oncograph.ingest.service import IngestCounts
from oncograph.linking import run_linking
from oncograph.settings import get_settings
from oncograph.sources.gdc.client import GdcClient
from oncograph_cli.context import store
from oncograph_cli.output import console, exit_with_error, print_json

app = typer.Typer(help="Bring data into the graph.", no_args_is_help=True)


def _progress(disable: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=disable,
    )


def _total(page: Any) -> int | None:
    pagination = getattr(page, "pagination", None)
    if isinstance(pagination, dict):
        total = pagination.get("total")
    else:
        total = getattr(pagination, "total", None)
    return int(total) if total is not None else None


def _report(run_id: int, counts: IngestCounts, extra: dict[str, Any], json_out: bool) -> None:
    payload = {
        "run_id": run_id,
        **extra,
        "entities": counts.entities(),
        "links": counts.links,
        "problems": [str(p) for p in counts.problems[:50]],
    }
    if json_out:
        print_json(payload)
        return
    console.print(f"run {run_id} done")
    for kind, c in counts.entities().items():
        console.print(
            f"  {kind:<17} inserted {c['inserted']:>7,}  updated {c['updated']:>7,}  "
            f"unchanged {c['unchanged']:>7,}  quarantined {c['quarantined']:>5,}"
        )
    for p in counts.problems[:10]:
        console.print(f"  [yellow]problem[/] {p}")


@app.command("gdc")
def ingest_gdc(
    project: list[str] = typer.Option(..., "--project", "-p", help="GDC project id; repeat for several."),
    gdc_url: str | None = typer.Option(
        None, "--gdc-url", help="GDC API base URL (default: ONCOGRAPH_GDC_URL)."
    ),
    page_size: int | None = typer.Option(None, "--page-size", help="Hits per request."),
    flow: bool = typer.Option(False, "--flow", help="Run as the Prefect flow harvest_gdc (ephemeral API)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Harvest GDC projects (cases with their whole graph, then files) into the graph."""
    settings = get_settings()
    url = gdc_url or settings.gdc_url
    if flow:
        from oncograph_flows.harvest import harvest_gdc_flow

        try:
            result = harvest_gdc_flow(projects=project, gdc_url=url, page_size=page_size)
        except OncographError as exc:
            exit_with_error(str(exc))
        if json_out:
            print_json(result)
        else:
            console.print(result)
        return
    try:
        factory = store()
        with GdcClient.from_settings(settings, base_url=url) as client, _progress(json_out) as progress:
            tasks: dict[str, Any] = {}

            def on_page(endpoint: str, n: int, page: Any) -> None:
                if endpoint not in tasks:
                    tasks[endpoint] = progress.add_task(f"{endpoint:<8}", total=_total(page))
                progress.advance(tasks[endpoint], n)

            harvest, counts = harvest_gdc(factory, client, project, page_size=page_size, on_page=on_page)
        _, links = run_linking(factory)
    except OncographError as exc:
        exit_with_error(str(exc))
    _report(harvest.run.id, counts, {"release": harvest.release, "links_created": links}, json_out)


@app.command("gdc-portal")
def ingest_gdc_portal(
    paths: list[Path] = typer.Argument(..., exists=True, dir_okay=True, help="Portal files or folders."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Import GDC Data Portal downloads: clinical/exposure/follow-up/pathology/family TSVs (2018-2025),
    biotab supplements, sample sheets, gdc-client manifests and the portal's JSON exports."""
    files: list[Path] = []
    for p in paths:
        files.extend(
            sorted(q for q in p.rglob("*") if q.is_file() and not q.name.endswith(".md"))
            if p.is_dir()
            else [p]
        )
    try:
        factory = store()
        with _progress(json_out) as progress:
            task = progress.add_task("files", total=len(files))
            seen: set[Path] = set()

            def on_batch(path: Path, n: int) -> None:
                if path not in seen:
                    seen.add(path)
                    progress.advance(task, 1)

            run, counts, outcomes = import_portal_files(
                factory, files, batch_size=get_settings().ingest_batch_size, on_batch=on_batch
            )
        _, links = run_linking(factory)
    except OncographError as exc:
        exit_with_error(str(exc))
    _report(run.id, counts, {"files": [asdict(o) for o in outcomes], "links_created": links}, json_out)
