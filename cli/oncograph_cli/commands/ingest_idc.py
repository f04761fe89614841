"""``oncograph ingest idc``: load IDC's series index (shipped by idc-index-data) into the graph, then link."""

from __future__ import annotations

from pathlib import Path

import typer

from oncograph.errors import OncographError
from oncograph.harvesting import import_idc_and_link
from oncograph_cli.commands.ingest_ui import out, print_entities, print_problems, progress_bars, safe
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, print_json


def ingest_idc(
    collection: list[str] = typer.Option(
        [], "--collection", "-c", help="IDC collection id (e.g. tcga_luad); repeat for several."
    ),
    all_collections: bool = typer.Option(False, "--all", help="Load every collection of the index."),
    index: Path | None = typer.Option(
        None,
        "--index",
        exists=True,
        dir_okay=False,
        help="Another series index Parquet file (default: the one idc-index-data ships).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Load IDC patients, DICOM studies and series from the IDC series index, then link identities.

    The load is complete for the collections it covers: rows an earlier IDC version had and this one
    lacks are retired (never deleted). Re-loading the same index changes nothing.
    """
    if bool(collection) == all_collections:
        exit_with_error("name the collections with --collection (repeatable), or pass --all")
    try:
        with progress_bars(disable=json_out) as progress:
            result, links = import_idc_and_link(
                store(),
                collections=None if all_collections else collection,
                index_path=index,
                progress=progress,
            )
    except OncographError as exc:
        exit_with_error(str(exc))
    payload = {**result.as_dict(), "links_created": links}
    if json_out:
        print_json(payload)
        return
    out.print(f"run {result.run.id} done: {result.release}, {len(result.collections)} collections")
    print_entities(payload["entities"])
    quarantined = sum(c["quarantined"] for c in payload["entities"].values())
    print_problems(quarantined, [])
    for warning in result.warnings[:10]:
        out.print(f"  [yellow]warning[/] {safe(warning)}")
