"""``oncograph releases ...``: the data releases behind the graph, and what changed between two."""

from __future__ import annotations

import typer

from oncograph.lineage.releases import diff_releases, list_releases
from oncograph_cli.context import in_transaction
from oncograph_cli.output import out, print_json, print_rows, print_table, safe

app = typer.Typer(help="Source data releases.", no_args_is_help=True)


@app.command("list")
def list_cmd(
    source: str | None = typer.Option(None, help="Only this source (gdc, gdc_portal, idc, pdc)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the releases oncograph has seen."""
    print_rows(
        in_transaction(lambda s: list_releases(s, source=source)),
        json_out=json_out,
        title="source releases",
        columns=("id", "source", "release", "documents", "first seen"),
        cells=lambda r: (
            str(r["id"]),
            safe(r["source"]),
            safe(r["release"]),
            f"{r['documents']:,}",
            r["first_seen_at"][:19],
        ),
    )


@app.command("diff")
def diff_cmd(
    a: str = typer.Argument(..., help="Older release: id, label or unique label prefix."),
    b: str = typer.Argument(..., help="Newer release: id, label or unique label prefix."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Added, changed and retired counts per entity between two releases of one source."""
    diff = in_transaction(lambda s: diff_releases(s, a, b))
    if json_out:
        print_json(diff)
        return
    print_table(
        safe(f"{diff['source']}: {diff['from']['release']} -> {diff['to']['release']}"),
        ("entity", "added", "changed", "retired"),
        [
            (kind, f"{c['added']:,}", f"{c['changed']:,}", f"{c['retired']:,}")
            for kind, c in diff["entities"].items()
        ],
    )
    for etype, c in diff["documents"].items():
        out.print(f"{safe(etype)} documents: {c['new']:,} new, {c['changed']:,} with a new version")
