"""``oncograph ingest idc``: load IDC's series index (shipped by idc-index-data) into the graph."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from oncograph.errors import OncographError
from oncograph.ingest.idc_import import import_idc
from oncograph_cli.context import store
from oncograph_cli.output import console, exit_with_error, print_json


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
    """Load IDC patients, DICOM studies and series from the IDC series index.

    The load is complete for the collections it covers: rows an earlier IDC version had and this one
    lacks are retired (never deleted). Re-loading the same index changes nothing.
    """
    if bool(collection) == all_collections:
        exit_with_error("name the collections with --collection (repeatable), or pass --all")
    try:
        waiting = contextlib.nullcontext() if json_out else console.status("loading the IDC index")
        with waiting:
            result = import_idc(
                store(), collections=None if all_collections else collection, index_path=index
            )
    except OncographError as exc:
        exit_with_error(str(exc))
    payload = result.as_dict()
    if json_out:
        print_json(payload)
        return
    console.print(f"run {result.run.id} done: {result.release}, {len(result.collections)} collections")
    for kind, c in payload["entities"].items():
        console.print(
            f"  {kind:<15} inserted {c['inserted']:>9,}  updated {c['updated']:>7,}  "
            f"unchanged {c['unchanged']:>9,}  quarantined {c['quarantined']:>5,}  retired {c['retired']:>7,}"
        )
    for warning in result.warnings[:10]:
        console.print(f"  [yellow]warning[/] {warning}")
