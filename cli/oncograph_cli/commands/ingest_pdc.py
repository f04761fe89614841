"""``oncograph ingest pdc``: PDC studies, cases and files through PDC's GraphQL API (or the local stand-in)."""

from __future__ import annotations

import typer

from oncograph.errors import OncographError
from oncograph.ingest.pdc_import import PdcCounts
from oncograph.ingest.pdc_import import ingest_pdc as run_ingest_pdc
from oncograph.linking import run_linking
from oncograph.settings import get_settings
from oncograph.sources.pdc import DEFAULT_URL, PdcClient
from oncograph_cli.context import store
from oncograph_cli.output import console, exit_with_error, print_json


def ingest_pdc(
    pdc_url: str | None = typer.Option(
        None,
        "--pdc-url",
        help=f"PDC GraphQL endpoint (default: ONCOGRAPH_PDC_URL, else {DEFAULT_URL}).",
    ),
    study: list[str] | None = typer.Option(
        None,
        "--study",
        "-s",
        help="PDC study id (PDC000111) or study submitter id (S038-3); repeat for several. "
        "Default: every study of studyCatalog.",
    ),
    file_type: list[str] | None = typer.Option(
        None, "--file-type", help="Only files of this filesPerStudy file_type (e.g. RAW); repeat for several."
    ),
    case: list[str] | None = typer.Option(
        None, "--case", help="Also fetch this case by case_submitter_id (e.g. 01BR001); repeat for several."
    ),
    page_size: int = typer.Option(100, "--page-size", min=1, help="limit of each paged query."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON result."),
) -> None:
    """Import PDC studies (with their cases, samples/aliquots in the case documents, and files) into the graph."""
    url = pdc_url or get_settings().pdc_url
    try:
        factory = store()
        with PdcClient(url, page_size=page_size) as client:

            def on_unit(label: str, counts: PdcCounts) -> None:
                if not json_out:
                    made = {k: v["inserted"] + v["updated"] for k, v in counts.entities().items()}
                    console.print(f"  {label}: {counts.items} items, new or changed {made}", highlight=False)

            handle, counts = run_ingest_pdc(
                factory,
                client,
                studies=study or None,
                file_types=file_type or (),
                cases=case or (),
                on_unit=on_unit,
            )
        _, links = run_linking(factory)
    except OncographError as exc:
        exit_with_error(str(exc))
    payload = {
        "run_id": handle.run.id,
        "release": handle.release,
        "pdc_url": url,
        **counts.as_dict(),
        "links_created": links,
    }
    if json_out:
        print_json(payload)
        return
    console.print(f"run {handle.run.id} done ({handle.release})")
    for table, c in counts.entities().items():
        console.print(
            f"  {table:<15} inserted {c['inserted']:>7,}  updated {c['updated']:>7,}  "
            f"unchanged {c['unchanged']:>7,}  quarantined {c['quarantined']:>5,}"
        )
    for note in counts.notes[:20]:
        console.print(f"  [cyan]note[/] {note}", highlight=False)
    for problem in counts.problems[:10]:
        console.print(f"  [yellow]problem[/] {problem}", highlight=False)
