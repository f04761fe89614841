"""``oncograph status``: counts per entity, releases, recent runs and the quarantine."""

from __future__ import annotations

import typer
from rich.table import Table

from oncograph.db import transaction
from oncograph.errors import OncographError
from oncograph.status import graph_status
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, out, print_json, safe


def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show what the graph holds and where it came from."""
    try:
        with transaction(store()) as s:
            info = graph_status(s)
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json(info)
        return
    counts = Table(title="graph")
    counts.add_column("entity", overflow="fold")
    counts.add_column("rows", justify="right")
    for kind, n in info["counts"].items():
        counts.add_row(safe(kind), f"{n:,}")
    out.print(counts)
    commons = Table(title="commons and identity links")
    commons.add_column("measure", overflow="fold")
    commons.add_column("count", justify="right")
    for key, n in info["commons"].items():
        commons.add_row(key.replace("_", " "), f"{n:,}")
    out.print(commons)
    releases = Table(title="source releases")
    for col in ("source", "release", "documents"):
        releases.add_column(col, overflow="fold")
    for r in info["releases"]:
        releases.add_row(safe(r["source"]), safe(r["release"]), f"{r['documents']:,}")
    out.print(releases)
    runs = Table(title="recent runs")
    for col in ("id", "transform", "status", "started", "error"):
        runs.add_column(col, overflow="fold")
    for r in info["recent_runs"]:
        runs.add_row(
            str(r["id"]),
            r["transform"],
            r["status"],
            str(r["started_at"])[:19],
            safe((r["error"] or "")[:60]),
        )
    out.print(runs)
    if info["quarantine"]:
        q = Table(title="quarantine")
        for col in ("source", "entity", "records", "example"):
            q.add_column(col, overflow="fold")
        for r in info["quarantine"]:
            q.add_row(
                safe(r["source"]),
                safe(r["entity_type"]),
                safe(str(r["records"])),
                safe(f"{r['example_location']}: {r['example_reason']}"[:100]),
            )
        out.print(q)
    else:
        out.print("quarantine: empty")
