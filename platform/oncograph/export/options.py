"""What an export is asked to do: split fields, seed, ratios, overwrite, compression and tiles, checked once
here so every door (CLI, API, flow, worker) accepts exactly the same values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oncograph.errors import ValidationError
from oncograph.export import splits
from oncograph.export.schema import DEFAULT_STRATIFY, STRATIFY_FIELDS

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""

SEED_MAX = 2**31 - 1
"""Seeds are 0..2**31-1 (a PostgreSQL ``integer``; the API and the CLI share this limit)."""

COMPRESSIONS = ("zstd", "snappy", "gzip", "none")


@dataclass(frozen=True)
class ExportOptions:
    split_by: tuple[str, ...] = DEFAULT_STRATIFY
    seed: int = 0
    ratios: tuple[float, float, float] = splits.DEFAULT_RATIOS
    overwrite: bool = False
    compression: str = "zstd"
    tiles: bool = False
    """Also ship the slides' per-tile features (:mod:`oncograph.export.tiles`): MIL training needs the tiles,
    not only the pooled vector, and the feature files can be large, so it is asked for."""

    def __post_init__(self) -> None:
        unknown = [f for f in self.split_by if f not in STRATIFY_FIELDS]
        if unknown:
            raise ValidationError(
                f"cannot stratify by {unknown}", hint=f"choose from {', '.join(STRATIFY_FIELDS)}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= SEED_MAX:
            raise ValidationError(
                f"seed {self.seed!r} is out of range", hint=f"use an integer from 0 to {SEED_MAX}"
            )
        splits.check_ratios(self.ratios)
        if self.compression not in COMPRESSIONS:
            raise ValidationError(
                f"unknown compression {self.compression!r}", hint=f"choose from {', '.join(COMPRESSIONS)}"
            )
        if not isinstance(self.tiles, bool):
            raise ValidationError(f"tiles must be true or false, not {self.tiles!r}", hint="tiles: true")

    def to_json(self) -> dict[str, Any]:
        """The options that decide the dataset's content (what the manifest records); ``tiles`` only when
        asked, so exports without tiles record the same options as before the option existed."""
        out: dict[str, Any] = {
            "split_by": list(self.split_by),
            "seed": self.seed,
            "ratios": list(self.ratios),
            "compression": self.compression,
        }
        if self.tiles:
            out["tiles"] = True
        return out

    def to_record(self) -> dict[str, Any]:
        """Everything, for the export record (``overwrite`` too)."""
        return {**self.to_json(), "overwrite": self.overwrite}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportOptions:
        seed = raw.get("seed", 0)
        if isinstance(seed, str) and seed.strip().lstrip("-").isdigit():
            seed = int(seed)
        return cls(
            split_by=tuple(raw.get("split_by", DEFAULT_STRATIFY)),
            seed=seed,
            ratios=splits.check_ratios(raw.get("ratios", splits.DEFAULT_RATIOS)),
            overwrite=bool(raw.get("overwrite", False)),
            compression=str(raw.get("compression", "zstd")),
            tiles=raw.get("tiles", False),
        )
