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

Modules: :mod:`.spec` (what an encoder is, the built-in ones), :mod:`.registry` (look up, list, register)
and :mod:`.loading` (checkpoints, models, :class:`ImageEncoder`/:class:`TextEncoder`).
"""

from typing import Any

from oncograph.embeddings.encoders.loading import (
    ImageEncoder,
    TextEncoder,
    load_image_encoder,
    load_text_encoder,
    read_state_dict,
)
from oncograph.embeddings.encoders.registry import add_encoder, get_encoder, list_encoders
from oncograph.embeddings.encoders.spec import (
    BUILTIN_NAMES,
    DEFAULT_ENCODER,
    POOLINGS,
    EncoderSpec,
    Triple,
    builtin_encoders,
    file_sha256,
    package_weight_file,
)


def __getattr__(name: str) -> Any:
    # ``BUILTIN`` reads the weights files, so it is computed on first use, never at import.
    if name == "BUILTIN":
        return builtin_encoders()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILTIN_NAMES",
    "DEFAULT_ENCODER",
    "POOLINGS",
    "EncoderSpec",
    "ImageEncoder",
    "TextEncoder",
    "Triple",
    "add_encoder",
    "builtin_encoders",
    "file_sha256",
    "get_encoder",
    "list_encoders",
    "load_image_encoder",
    "load_text_encoder",
    "package_weight_file",
    "read_state_dict",
]
