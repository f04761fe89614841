"""Loading encoders: read checkpoints safely, build timm/open_clip models, run them on tiles and texts.

torch, timm and sentence-transformers are imported only when an encoder is loaded or registered.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from oncograph.embeddings.encoders.spec import _LITE0_PACKAGE, EncoderSpec, file_sha256, package_weight_file
from oncograph.errors import ValidationError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

# Packages whose state dict uses another implementation's names, in the order of the timm model's tensors
# (efficientnet_pytorch's 296 tensors map one to one onto timm tf_efficientnet_lite0's, every shape equal).
_IN_ORDER_PACKAGES = frozenset({_LITE0_PACKAGE})
_BATCH = 64


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
