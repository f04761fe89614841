"""What the ingest commands show: results on stdout, progress bars (and errors) on stderr.

:func:`progress_bars` turns the core's ``progress(label, done, total)`` callback into rich progress bars on
stderr: one bar per label, indeterminate while the total is unknown (rich redraws them live on a terminal and
prints them once at the end elsewhere). With ``--json`` there are none, and stdout holds only the JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from oncograph.ingest.progress import Progress as ProgressCallback
from oncograph_cli.output import err, out, safe

__all__ = ["out", "print_entities", "print_problems", "progress_bars", "safe"]


@contextmanager
def progress_bars(*, disable: bool) -> Iterator[ProgressCallback]:
    """A progress callback drawing rich bars on stderr for as long as the block runs."""
    bars = Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=disable,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(label: str, done: int, total: int | None) -> None:
        if label not in tasks:
            tasks[label] = bars.add_task(safe(label), total=total)
        bars.update(tasks[label], completed=done, total=total)

    with bars:
        yield update


def print_entities(entities: dict[str, dict[str, int]]) -> None:
    """One line per entity kind: inserted, updated, unchanged, quarantined (and retired when present)."""
    for kind, c in entities.items():
        retired = f"  retired {c['retired']:>7,}" if "retired" in c else ""
        out.print(
            f"  {kind:<17} inserted {c['inserted']:>7,}  updated {c['updated']:>7,}  "
            f"unchanged {c['unchanged']:>7,}  quarantined {c['quarantined']:>5,}{retired}"
        )


def print_problems(quarantined: int, problems: list[str]) -> None:
    """Say how many records were quarantined and where to see them all, then the first problems."""
    if quarantined:
        out.print(
            f"{quarantined:,} record(s) quarantined (not imported; the rest was): "
            "see them with `oncograph status`"
        )
    for problem in problems[:10]:
        out.print(f"  [yellow]problem[/] {safe(problem)}")
