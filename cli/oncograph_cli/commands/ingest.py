"""``oncograph ingest ...``: harvest the GDC API, import GDC portal downloads.

Results go to stdout, progress bars and errors to stderr. Bad records never fail a command: they are
quarantined (``oncograph status`` lists them) and the command says how many.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from oncograph.errors import OncographError
from oncograph.harvesting import harvest_gdc_and_link
from oncograph.ingest.portal_import import import_portal_files
from oncograph.linking import run_linking
from oncograph.settings import get_settings
from oncograph.sources.gdc.client import GdcClient
from oncograph_cli.commands.ingest_ui import out, print_entities, print_problems, progress_bars, safe
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, print_json

app = typer.Typer(help="Bring data into the graph.", no_args_is_help=True)


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
    """Harvest GDC projects (cases with their whole graph, then files) into the graph, then link identities."""
    settings = get_settings()
    url = gdc_url or settings.gdc_url
    if flow:
        from oncograph_flows.harvest import harvest_gdc_flow

        try:
            payload = harvest_gdc_flow(projects=project, gdc_url=url, page_size=page_size)
        except OncographError as exc:
            exit_with_error(str(exc))
    else:
        try:
            factory = store()
            with (
                GdcClient.from_settings(settings, base_url=url) as client,
                progress_bars(disable=json_out) as progress,
            ):
                result = harvest_gdc_and_link(
                    factory, client, project, page_size=page_size, progress=progress
                )
        except OncographError as exc:
            exit_with_error(str(exc))
        payload = result.as_dict()
    if json_out:
        print_json(payload)
        return
    out.print(f"run {payload['run_id']} done ({safe(payload['release'])})")
    print_entities(payload["entities"])
    print_problems(int(payload.get("quarantined", 0)), payload["problems"])


@app.command("gdc-portal")
def ingest_gdc_portal(
    paths: list[Path] = typer.Argument(..., exists=True, dir_okay=True, help="Portal files or folders."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Import GDC Data Portal downloads: clinical/exposure/follow-up/pathology/family TSVs (2018-2025),
    biotab supplements, sample sheets, gdc-client manifests and the portal's JSON exports.

    A file named here must be one of those (else nothing is imported); in a folder, files that are not are
    listed with the reason and skipped. A file without rows imports nothing."""
    try:
        factory = store()
        with progress_bars(disable=json_out) as progress:
            run, counts, outcomes = import_portal_files(
                factory, paths, batch_size=get_settings().ingest_batch_size, progress=progress
            )
            _, links = run_linking(factory)
    except OncographError as exc:
        exit_with_error(str(exc))
    quarantined = sum(counts.quarantined.values())
    if json_out:
        print_json(
            {
                "run_id": run.id,
                "files": [asdict(o) for o in outcomes],
                "entities": counts.entities(),
                "links": counts.links,
                "quarantined": quarantined,
                "problems": [str(p) for p in counts.problems[:50]],
                "links_created": links,
            }
        )
        return
    imported = [o for o in outcomes if o.status == "imported"]
    out.print(f"run {run.id} done: {len(imported)} file(s) imported")
    for o in outcomes:
        if o.status == "empty":
            out.print(f"{safe(Path(o.path).name)}: {o.note}")
    skipped = [o for o in outcomes if o.status == "skipped"]
    if skipped:
        out.print(f"{len(skipped)} file(s) not recognised, skipped:")
        for o in skipped:
            out.print(f"  {safe(o.path)}: {safe(o.note)}")
    print_entities(counts.entities())
    print_problems(quarantined, [str(p) for p in counts.problems])
