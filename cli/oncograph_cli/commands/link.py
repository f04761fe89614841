"""``oncograph link``: (re)build identity links across GDC, IDC and PDC."""

from __future__ import annotations

import typer

from oncograph.errors import OncographError
from oncograph.linking import run_linking
from oncograph_cli.commands.ingest_ui import out
from oncograph_cli.context import store
from oncograph_cli.output import console, exit_with_error, print_json


def link(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Link IDC patients and PDC cases to GDC patients by explicit evidence only (see oncograph.linking)."""
    try:
        if json_out:
            run, created = run_linking(store())
        else:
            with console.status("linking identities"):
                run, created = run_linking(store())
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json({"run_id": run.id, "created": created})
        return
    for commons, by_method in created.items():
        for method, n in by_method.items():
            out.print(f"{commons}: {n:,} new links by {method}")
