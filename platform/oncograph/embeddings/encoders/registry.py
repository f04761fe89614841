"""The encoder registry: look encoders up by name and modality, list them, register checkpoints.

A checkpoint is checked by loading it, strictly, before it is stored in the ``encoder`` table. Registry
functions take a Session and never commit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from oncograph.db.models import ENCODER_MODALITIES, Encoder
from oncograph.embeddings.encoders.loading import _arch_kind, _build_model, _probe_dim, read_state_dict
from oncograph.embeddings.encoders.spec import (
    BUILTIN_NAMES,
    DEFAULT_ENCODER,
    POOLINGS,
    EncoderSpec,
    Triple,
    builtin_encoders,
    file_sha256,
)
from oncograph.embeddings.store import check_model
from oncograph.errors import NotFoundError, ValidationError


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
