"""``oncograph encoders list|add``: the encoders embeddings are made with, and registering a checkpoint.

Registering loads the checkpoint strictly into its architecture and probes its output size, so a checkpoint
that would fail in an embedding run fails here, before anything is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from sqlalchemy.orm import Session

from oncograph.embeddings.encoders import EncoderSpec, add_encoder, list_encoders
from oncograph_cli.context import in_transaction
from oncograph_cli.output import print_result, print_rows, safe

encoders = typer.Typer(
    help="List the encoders and register foundation-model checkpoints.\n\n"
    "Built-in: efficientnet-lite0 (ImageNet; slides and scans) and minilm-l6 (clinical text), offline from "
    "installed packages. A pathology or radiology foundation model is registered from a local checkpoint "
    "with `oncograph encoders add`.",
    no_args_is_help=True,
)

_JSON = typer.Option(False, "--json", help="Print JSON.")


@encoders.command("list")
def list_cmd(json_out: bool = _JSON) -> None:
    """The built-in and registered encoders, with the version each embedding records."""
    specs = in_transaction(list_encoders)
    print_rows(
        [s.to_json() for s in specs],
        json_out=json_out,
        title="encoders",
        columns=("name", "modalities", "arch", "dim", "tile px", "µm/px", "version", "weights"),
        cells=lambda e: (
            safe(e["name"] + (" (built-in)" if e["builtin"] else "")),
            safe(", ".join(e["modalities"])),
            safe(e["arch"]),
            str(e["dim"]),
            str(e["tile_size"] or "-"),
            "-" if e["mpp"] is None else str(e["mpp"]),
            safe(e["version"]),
            safe(e["weights"]),
        ),
    )


@encoders.command("add")
def add_cmd(
    name: str = typer.Argument(..., help="Encoder name (letters, digits, . _ : / @ + -), e.g. uni-v1."),
    arch: str = typer.Option(
        ..., "--arch", help="timm:<model name> (e.g. timm:vit_large_patch16_224) or open_clip:<model name>."
    ),
    weights: Path = typer.Option(
        ..., "--weights", help="Local checkpoint: a state dict (.pth/.pt/.bin, or .safetensors)."
    ),
    modality: list[str] = typer.Option(
        ..., "--modality", help="slide and/or scan (repeat the option for both)."
    ),
    mpp: float | None = typer.Option(None, "--mpp", help="µm/px slide tiles are read at (needed for slide)."),
    tile: int = typer.Option(224, "--tile", help="Tile size in pixels the model takes."),
    mean: tuple[float, float, float] = typer.Option(
        ..., "--mean", help="Normalisation mean, R G B, e.g. --mean 0.485 0.456 0.406."
    ),
    std: tuple[float, float, float] = typer.Option(
        ..., "--std", help="Normalisation std, R G B, e.g. --std 0.229 0.224 0.225."
    ),
    pooling: str = typer.Option(
        "mean", "--pooling", help="How tile features are pooled per slide: mean or max."
    ),
    json_out: bool = _JSON,
) -> None:
    """Register a checkpoint (loaded strictly into --arch first); the same one again changes nothing."""

    def add(s: Session) -> tuple[EncoderSpec, bool]:
        existed = any(e.name == name for e in list_encoders(s))
        spec = add_encoder(
            s,
            name=name,
            arch=arch,
            weights=weights,
            modalities=modality,
            tile_size=tile,
            mpp=mpp,
            mean=mean,
            std=std,
            pooling=pooling,
        )
        return spec, not existed

    spec, created = in_transaction(add)
    payload: dict[str, Any] = {**spec.to_json(), "created": created}
    what = "registered" if created else "already registered (unchanged)"
    text = f"{what} encoder {safe(spec.name)}: {spec.dim}-d, version {safe(spec.version)}"
    print_result(payload, json_out=json_out, text=text)
