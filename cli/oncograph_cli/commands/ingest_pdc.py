"""``oncograph ingest pdc``: PDC studies, cases and files through PDC's GraphQL API (or the local stand-in)."""

from __future__ import annotations

import typer

from oncograph.errors import OncographError
from oncograph.harvesting import ingest_pdc_and_link
from oncograph.settings import get_settings
from oncograph.sources.pdc import DEFAULT_URL, PdcClient
from oncograph_cli.commands.ingest_ui import out, print_entities, print_problems, progress_bars, safe
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, print_json


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
    """Import PDC studies (with their cases, samples/aliquots in the case documents, and files) into the graph,
    then link identities."""
    url = pdc_url or get_settings().pdc_url
    try:
        factory = store()
        with PdcClient(url, page_size=page_size) as client, progress_bars(disable=json_out) as progress:
            handle, counts, links = ingest_pdc_and_link(
                factory,
                client,
                studies=study or None,
                file_types=file_type or (),
                cases=case or (),
                progress=progress,
            )
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
    out.print(f"run {handle.run.id} done ({handle.release})")
    print_entities(counts.entities())
    for note in counts.notes[:20]:
        out.print(f"  [cyan]note[/] {safe(note)}")
    print_problems(sum(counts.quarantined.values()), counts.problems)
