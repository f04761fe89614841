"""``oncograph releases ...``: the data releases behind the graph, and what changed between two."""

from __future__ import annotations

import typer
from rich.table import Table

from oncograph.db import transaction
from oncograph.errors import OncographError
from oncograph.lineage.releases import diff_releases, list_releases
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, out, print_json, safe

app = typer.Typer(help="Source data releases.", no_args_is_help=True)


@app.command("list")
def list_cmd(
    source: str | None = typer.Option(None, help="Only this source (gdc, gdc_portal, idc, pdc)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the releases oncograph has seen."""
    try:
        with transaction(store()) as s:
            rows = list_releases(s, source=source)
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json(rows)
        return
    table = Table(title="source releases")
    for col in ("id", "source", "release", "documents", "first seen"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["id"]),
            safe(r["source"]),
            safe(r["release"]),
            f"{r['documents']:,}",
            r["first_seen_at"][:19],
        )
    out.print(table)


@app.command("diff")
def diff_cmd(
    a: str = typer.Argument(..., help="Older release: id, label or unique label prefix."),
    b: str = typer.Argument(..., help="Newer release: id, label or unique label prefix."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Added, changed and retired counts per entity between two releases of one source."""
    try:
        with transaction(store()) as s:
            diff = diff_releases(s, a, b)
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json(diff)
        return
    table = Table(title=safe(f"{diff['source']}: {diff['from']['release']} -> {diff['to']['release']}"))
    for col in ("entity", "added", "changed", "retired"):
        table.add_column(col, overflow="fold")
    for kind, c in diff["entities"].items():
        table.add_row(kind, f"{c['added']:,}", f"{c['changed']:,}", f"{c['retired']:,}")
    out.print(table)
    for etype, c in diff["documents"].items():
        out.print(f"{safe(etype)} documents: {c['new']:,} new, {c['changed']:,} with a new version")
