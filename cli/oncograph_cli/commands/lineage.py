"""``oncograph lineage ID``: where a record came from."""

from __future__ import annotations

import typer

from oncograph.db import transaction
from oncograph.errors import OncographError
from oncograph.lineage import lineage_of
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, out, print_json, safe


def lineage(
    entity_id: str = typer.Argument(..., help="A GDC UUID, submitter id or project id."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the graph rows an id names, the document versions, runs and releases behind them."""
    try:
        with transaction(store()) as s:
            info = lineage_of(s, entity_id)
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json(info)
        return
    for r in info["records"]:
        out.print(
            f"[bold]{r['kind']}[/] {safe(r['key'])}: built from document {r['source_document_id']}, "
            f"first seen {r['first_seen']}, last seen {r['last_seen']}"
        )
    for d in info["documents"]:
        mark = "*" if d["current"] else " "
        out.print(
            f" {mark} document {d['id']} {d['source']}/{d['entity_type']} {safe(d['entity_id'])} "
            f"sha256:{d['content_hash'][:12]} release {safe(repr(d['release']))} run {d['run_id']} "
            f"({d['transform']}) at {safe(d['location'])}"
        )
