"""``oncograph facets`` and ``oncograph fields``: what a GDC filter selects, broken down by field.

The local operator reads with :meth:`Scope.everything` (direct database access sees controlled data too).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import orjson
import typer
from rich.table import Table

from oncograph.access import Scope
from oncograph.cohorts.fields import FIELDS
from oncograph.cohorts.filters import FilterError
from oncograph.cohorts.query import (
    DEFAULT_BINS,
    DEFAULT_FACET_SIZE,
    DEFAULT_FACETS,
    facets,
    modality_matrix,
)
from oncograph.cohorts.results import Facet, TermsFacet
from oncograph.db import transaction
from oncograph.errors import OncographError
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, out, print_json, safe

_JSON = typer.Option(False, "--json", help="Print JSON.")


def fail(exc: OncographError) -> NoReturn:
    """Exit with the error's message; a filter error lists every problem with its location."""
    if isinstance(exc, FilterError):
        lines = "\n".join(f"  {p.loc}: {p.msg}" for p in exc.problems)
        n = len(exc.problems)
        exit_with_error(
            f"invalid filter ({n} problem{'s' if n != 1 else ''}):\n{lines}\n"
            "filters follow the GDC grammar; `oncograph fields` lists the fields"
        )
    if exc.hint.startswith("GET /cohorts"):  # the API's hint: say it the CLI's way
        exit_with_error(f"{exc.args[0]} (`oncograph cohort list` lists the cohorts)")
    exit_with_error(str(exc))


def load_filters(path: Path | None) -> Any:
    """A GDC filter from a JSON file (``-``: standard input); ``None`` when no file is given (every patient).

    A GDC API request body (``{"filters": {...}, "size": ...}``) is accepted too: its ``filters`` is used."""
    if path is None:
        return None
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        exit_with_error(f"cannot read the filter file {path}: {exc.strerror or exc}")
    if not raw.strip():
        exit_with_error(f"the filter file {path} is empty (give a GDC filter, or {{}} for every patient)")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        exit_with_error(f"the filter file {path} is not valid JSON: {exc}")
    if isinstance(doc, dict) and "filters" in doc and "op" not in doc:
        return doc["filters"]
    return doc


def facets_cmd(
    filters: Path | None = typer.Option(
        None, "--filters", "-f", help="GDC filter JSON file ('-': stdin); default every patient."
    ),
    fields: list[str] | None = typer.Option(
        None,
        "--field",
        help=f"Facet this field (repeatable; `oncograph fields` lists them). Default: {', '.join(DEFAULT_FACETS)}.",
    ),
    matrix: bool = typer.Option(False, "--matrix", help="Also show the modality combination matrix."),
    size: int = typer.Option(DEFAULT_FACET_SIZE, "--size", min=1, max=10_000, help="Terms per facet."),
    bins: int = typer.Option(DEFAULT_BINS, "--bins", min=1, max=1_000, help="Bins per numeric facet."),
    json_out: bool = _JSON,
) -> None:
    """Count the patients a filter selects, per value of each field (histograms for numeric fields)."""
    raw = load_filters(filters)
    names = list(fields) if fields else list(DEFAULT_FACETS)
    scope = Scope.everything()
    try:
        with transaction(store()) as s:
            conn = s.connection()
            total, result = facets(conn, raw, names, scope, size=size, bins=bins)
            mods = modality_matrix(conn, raw, scope) if matrix else None
    except OncographError as exc:
        fail(exc)
    if json_out:
        payload: dict[str, Any] = {"total": total, "facets": [f.to_json() for f in result]}
        if mods is not None:
            payload["modality_matrix"] = mods.to_json()
        print_json(payload)
        return
    out.print(f"[bold]{total:,}[/] patients match")
    for facet in result:
        out.print(_facet_table(facet, total))
    if mods is not None:
        table = Table(title="modality combinations")
        table.add_column("modalities", overflow="fold")
        table.add_column("patients", justify="right")
        for combo in mods.combinations:
            table.add_row(safe(" + ".join(combo[0])) or "(none)", f"{combo[1]:,}")
        out.print(table)
        per = ", ".join(f"{m} {n:,}" for m, n in mods.modalities.items() if n)
        out.print(f"patients per modality: {safe(per) or 'none'}")


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _plain(value: float) -> str:
    return f"{value:g}"


def _in_years(days: float) -> str:
    return f"{days:g} ({days / 365.25:.1f} y)"


def _facet_table(facet: Facet, total: int) -> Table:
    table = Table(title=safe(facet.field), title_justify="left")
    if isinstance(facet, TermsFacet):
        table.add_column("value", overflow="fold")
        table.add_column("patients", justify="right")
        table.add_column("%", justify="right")
        for key, n in facet.buckets:
            table.add_row(safe(key), f"{n:,}", _pct(n, total))
        if facet.other:
            table.add_row(f"({facet.other:,} more values)", "", "")
    else:
        field = FIELDS.get(facet.field)
        unit = field.unit if field else None
        # day counts are shown in years too (GDC ages at diagnosis are days)
        shown = _in_years if unit == "days" else _plain
        suffix = f" ({unit})" if unit else ""
        table.add_column("from" + suffix)
        table.add_column("to" + suffix)
        table.add_column("patients", justify="right")
        table.add_column("%", justify="right")
        for lo, hi, n in facet.buckets:
            table.add_row(shown(lo), shown(hi), f"{n:,}", _pct(n, total))
        stats = facet.stats
        lo_, mean, hi_ = stats.get("min"), stats.get("mean"), stats.get("max")
        if lo_ is not None and hi_ is not None:
            table.caption = f"min {shown(lo_)}, mean {shown(mean or 0.0)}, max {shown(hi_)}"
    table.add_row(
        "(missing)", *([""] * (len(table.columns) - 3)), f"{facet.missing:,}", _pct(facet.missing, total)
    )
    return table


def fields_cmd(
    text: str | None = typer.Argument(None, help="Only fields whose name or description contains this."),
    json_out: bool = _JSON,
) -> None:
    """List the fields filters and facets may use."""
    needle = (text or "").lower()
    rows = [
        f.describe()
        for f in FIELDS.values()
        if not needle or needle in f.name.lower() or needle in f.description.lower()
    ]
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"cohort fields ({len(rows)} of {len(FIELDS)})")
    for col in ("field", "type", "facet", "nested", "description"):
        table.add_column(col, overflow="fold")
    for r in rows:
        desc = r["description"] + (f" Values: {', '.join(r['values'])}." if r.get("values") else "")
        table.add_row(r["field"], r["type"], r["facet"], "yes" if r["nested"] else "", safe(desc))
    out.print(table)
