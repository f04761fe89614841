"""``oncograph status``: counts per entity, releases, recent runs and the quarantine."""

from __future__ import annotations

import typer

from oncograph.status import graph_status
from oncograph_cli.context import in_transaction
from oncograph_cli.output import out, print_json, print_table, safe


def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show what the graph holds and where it came from."""
    info = in_transaction(graph_status)
    if json_out:
        print_json(info)
        return
    print_table(
        "graph",
        ("entity", "rows"),
        [(safe(kind), f"{n:,}") for kind, n in info["counts"].items()],
        right={"rows"},
    )
    print_table(
        "commons and identity links",
        ("measure", "count"),
        [(key.replace("_", " "), f"{n:,}") for key, n in info["commons"].items()],
        right={"count"},
    )
    print_table(
        "source releases",
        ("source", "release", "documents"),
        [(safe(r["source"]), safe(r["release"]), f"{r['documents']:,}") for r in info["releases"]],
    )
    print_table(
        "recent runs",
        ("id", "transform", "status", "started", "error"),
        [
            (
                str(r["id"]),
                r["transform"],
                r["status"],
                str(r["started_at"])[:19],
                safe((r["error"] or "")[:60]),
            )
            for r in info["recent_runs"]
        ],
    )
    if info["quarantine"]:
        print_table(
            "quarantine",
            ("source", "entity", "records", "example"),
            [
                (
                    safe(r["source"]),
                    safe(r["entity_type"]),
                    safe(str(r["records"])),
                    safe(f"{r['example_location']}: {r['example_reason']}"[:100]),
                )
                for r in info["quarantine"]
            ],
        )
    else:
        out.print("quarantine: empty")
