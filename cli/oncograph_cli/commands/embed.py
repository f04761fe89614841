"""``oncograph embed slides|scans|text``: embed objects with the registered encoders, on Ray by default.

Results go to stdout (``--json``: ``{"run_id", "embedded", "skipped", "failed", "unattached", "tiles",
"seconds", ...}``), the progress bar and errors to stderr. An object that cannot be embedded (a corrupt slide,
an unreadable DICOM file, a slide without tissue) is reported with its reason; the others go on.
"""

from __future__ import annotations

import typer

from oncograph.embeddings.jobs import EmbedRequest
from oncograph.errors import OncographError
from oncograph.settings import get_settings
from oncograph_cli.commands.ingest_ui import progress_bars
from oncograph_cli.context import store
from oncograph_cli.output import exit_with_error, out, print_json, safe

app = typer.Typer(
    help="Embed slides, radiology series and clinical text with the registered encoders (on Ray).",
    no_args_is_help=True,
)

_PATHS = typer.Option(None, "--paths", "-p", help="Files, folders or s3:// URIs; repeat for several.")
_COHORT = typer.Option(None, "--cohort", help="A saved cohort id: embed its members' objects.")
_ENCODER = typer.Option(None, "--encoder", "-e", help="Encoder name (`oncograph encoders list`).")
_SERIAL = typer.Option(False, "--serial", help="Run in this process instead of on Ray (no overlap).")
_FLOW = typer.Option(
    False, "--flow", help="Run as the Prefect flow `embed` (ephemeral API unless configured)."
)
_BATCH = typer.Option(None, "--batch-size", help="Tiles, slices or texts per encoder call.")
_JSON = typer.Option(False, "--json", help="Print a JSON result.")


def _run(request_args: dict[str, object], *, serial: bool, flow: bool, json_out: bool) -> None:
    settings = get_settings()
    try:
        request_args["batch_size"] = request_args.get("batch_size") or settings.embed_batch_size
        request = EmbedRequest(**request_args)  # type: ignore[arg-type]
        factory = store()
        if flow:
            from oncograph_flows.embed import embed_flow

            payload = embed_flow(**{k: v for k, v in request.to_json().items()})
        else:
            from oncograph.embeddings.compute import SerialExecutor
            from oncograph_flows.embed import run_embedding

            with progress_bars(disable=json_out) as progress:

                def shown(summary: object) -> None:
                    done = summary.embedded + summary.failed + summary.skipped  # type: ignore[attr-defined]
                    progress(f"embed {request.modality}", done, summary.total)  # type: ignore[attr-defined]

                summary = run_embedding(
                    request,
                    settings=settings,
                    factory=factory,
                    executor=SerialExecutor() if serial else None,
                    on_progress=shown,
                )
            payload = summary.to_json()
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json(payload)
        return
    out.print(
        f"run {payload['run_id']}: {payload['embedded']} embedded, {payload['skipped']} skipped, "
        f"{payload['failed']} failed, {payload['unattached']} unattached, {payload['tiles']} tiles "
        f"in {payload['seconds']:.1f} s ({safe(payload['encoder'])})"
    )
    for failure in payload.get("failures", []):
        out.print(f"  failed: {safe(failure['source'])}: {safe(failure['reason'])}")


@app.command("slides")
def embed_slides(
    paths: list[str] | None = _PATHS,
    cohort: int | None = _COHORT,
    gdc_file_id: list[str] | None = typer.Option(
        None, "--gdc-file-id", help="An open GDC file in the graph, fetched from the GDC /data endpoint."
    ),
    encoder: str | None = _ENCODER,
    mpp: float | None = typer.Option(
        None, "--mpp", help="Level-0 µm/px, for slides that carry neither µm/px nor objective power."
    ),
    min_tissue: float = typer.Option(0.25, "--min-tissue", help="Least tissue fraction of a kept tile."),
    batch_size: int | None = _BATCH,
    serial: bool = _SERIAL,
    flow: bool = _FLOW,
    json_out: bool = _JSON,
) -> None:
    """Tile whole-slide images at the encoder's µm/px, embed the tissue tiles, store per-tile features (HDF5)
    and a pooled slide vector."""
    _run(
        {
            "modality": "slide",
            "encoder": encoder,
            "paths": tuple(paths or ()),
            "cohort_id": cohort,
            "gdc_file_ids": tuple(gdc_file_id or ()),
            "mpp": mpp,
            "min_tissue": min_tissue,
            "batch_size": batch_size,
        },
        serial=serial,
        flow=flow,
        json_out=json_out,
    )


@app.command("scans")
def embed_scans(
    paths: list[str] | None = _PATHS,
    encoder: str | None = _ENCODER,
    window: str | None = typer.Option(
        None, "--window", help="CT window: lung, mediastinum, soft_tissue, brain, bone (default soft_tissue)."
    ),
    batch_size: int | None = _BATCH,
    serial: bool = _SERIAL,
    flow: bool = _FLOW,
    json_out: bool = _JSON,
) -> None:
    """Group DICOM files into series, window (CT) or normalise (MR), embed 2.5D slices, pool per series."""
    _run(
        {
            "modality": "scan",
            "encoder": encoder,
            "paths": tuple(paths or ()),
            "window": window,
            "batch_size": batch_size,
        },
        serial=serial,
        flow=flow,
        json_out=json_out,
    )


@app.command("text")
def embed_text(
    cohort: int | None = _COHORT,
    encoder: str | None = _ENCODER,
    batch_size: int | None = _BATCH,
    serial: bool = _SERIAL,
    flow: bool = _FLOW,
    json_out: bool = _JSON,
) -> None:
    """Render each patient's clinical record (diagnoses, stage, treatments, exposures, follow-ups) to a summary
    and embed it (default: every patient)."""
    _run(
        {"modality": "text", "encoder": encoder, "cohort_id": cohort, "batch_size": batch_size},
        serial=serial,
        flow=flow,
        json_out=json_out,
    )
