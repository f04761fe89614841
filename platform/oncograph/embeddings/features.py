"""Patch-feature files in the TRIDENT/CLAM layout, so that slide encoders and MIL code read ours unchanged.

One HDF5 file per slide and encoder: dataset ``coords`` (n, 2) int64, level-0 top-left (x, y) of each patch,
and dataset ``features`` (n, d) float32, row i being the embedding of patch i. TRIDENT stores the patching
attributes on ``coords`` (``patch_size``, ``patch_size_level0``, ``level0_magnification``,
``target_magnification``, ...) and its readers look there; we store the same set on ``coords`` and on the
file root (for tools that read root attributes), plus ``level0_mpp``/``target_mpp`` (the exact scale, which
the integer magnifications only approximate) and ``encoder``/``encoder_version``. ``patch_size_level0`` is
the authority on scale: TRIDENT's ``patch_size * level0_magnification / target_magnification`` can differ
from it by a few percent when the magnification is rounded.

Files are written to a temporary name in the destination folder and moved into place with ``os.replace``,
so a reader never sees half a file, and written without HDF5 timestamps, so equal inputs give equal bytes
(and an equal sha256, usable as a content address).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py  # type: ignore[import-untyped]
import numpy as np

from oncograph.embeddings.slides import SlideInfo, TileGrid
from oncograph.errors import ValidationError

#: Attributes every feature file carries (TRIDENT's coords attributes plus the exact scale and the encoder).
REQUIRED_ATTRS = (
    "patch_size",
    "patch_size_level0",
    "level0_magnification",
    "target_magnification",
    "level0_mpp",
    "target_mpp",
    "encoder",
    "encoder_version",
)
_CHUNK_BYTES = 1 << 20


def feature_attrs(
    info: SlideInfo, grid: TileGrid, *, encoder: str, encoder_version: str, **extra: Any
) -> dict[str, Any]:
    """The attributes of a feature file for one slide, grid and encoder (``extra`` is added as is).

    ``level0_magnification`` is the slide's objective power, or 10 / level-0 µm/px when it states none
    (the usual 10x ≈ 1 µm/px convention); ``target_magnification`` is that scaled by level0_mpp/target_mpp
    and rounded, as TRIDENT's integer magnifications are.
    """
    level0_mag = info.objective_power if info.objective_power is not None else 10.0 / info.mpp
    attrs: dict[str, Any] = {
        "patch_size": grid.tile_px,
        "patch_size_level0": grid.patch_size_level0,
        "patch_level": grid.level,
        "level0_magnification": level0_mag,
        "target_magnification": max(1, round(level0_mag * info.mpp / grid.target_mpp)),
        "level0_mpp": info.mpp,
        "mpp_source": info.mpp_source,
        "target_mpp": grid.target_mpp,
        "overlap": 0,
        "name": info.path.stem,
        "level0_width": info.width,
        "level0_height": info.height,
        "encoder": encoder,
        "encoder_version": encoder_version,
    }
    attrs.update(extra)
    return attrs


def _attr_value(key: str, value: Any) -> Any:
    if value is None:
        return "None"  # HDF5 has no null; TRIDENT writes the string too
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return np.asarray(value)
    raise ValidationError(
        f"feature-file attribute {key!r} has unsupported type {type(value).__name__}",
        hint="use str, int, float, bool, None, a dict (stored as JSON) or a list of numbers",
    )


def _check_arrays(coords: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coords, features = np.asarray(coords), np.asarray(features)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValidationError(
            f"coords must be (n, 2), got shape {coords.shape}", hint="level-0 top-left (x, y) per patch"
        )
    if features.ndim != 2 or features.shape[0] != coords.shape[0]:
        raise ValidationError(
            f"features must be (n, d) with n = {coords.shape[0]} coords, got shape {features.shape}",
            hint="one feature row per patch, in the order of coords",
        )
    if not np.issubdtype(coords.dtype, np.integer):
        raise ValidationError(f"coords must be integers, got {coords.dtype}", hint="level-0 pixel positions")
    if not np.isfinite(features).all():
        raise ValidationError("features contain NaN or infinity", hint="check the encoder's output")
    return coords.astype(np.int64, copy=False), features.astype(np.float32, copy=False)


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    if shape[0] == 0:
        return None
    row_bytes = 4 * max(1, int(np.prod(shape[1:])))
    return (max(1, min(shape[0], _CHUNK_BYTES // row_bytes)), *shape[1:])


def _write(path: Path, coords: np.ndarray, features: np.ndarray, attrs: Mapping[str, Any]) -> None:
    values = {key: _attr_value(key, value) for key, value in attrs.items()}
    with h5py.File(path, "w", track_order=True) as f:
        for key, value in values.items():
            f.attrs[key] = value
        dset = f.create_dataset("coords", data=coords, chunks=_chunks(coords.shape), track_times=False)
        for key, value in values.items():
            dset.attrs[key] = value
        feats = f.create_dataset("features", data=features, chunks=_chunks(features.shape), track_times=False)
        feats.attrs["encoder"] = values["encoder"]
        feats.attrs["encoder_version"] = values["encoder_version"]


def write_features_h5(
    path: Path, coords: np.ndarray, features: np.ndarray, attrs: Mapping[str, Any]
) -> tuple[str, int]:
    """Write one feature file atomically; returns its (sha256 hex, size in bytes).

    Raises:
        ValidationError: shapes or dtypes that do not fit the layout, a missing required attribute
            (``REQUIRED_ATTRS``; :func:`feature_attrs` makes them) or an attribute HDF5 cannot store.
    """
    path = Path(path)
    coords, features = _check_arrays(coords, features)
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise ValidationError(
            f"feature-file attributes missing: {', '.join(missing)}", hint="build them with feature_attrs()"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write(tmp, coords, features, attrs)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the published file is read by other processes
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return file_sha256(path), path.stat().st_size


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_features_h5(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """coords (n, 2) int64, features (n, d) float32 and the attributes (root, then those on ``coords``).

    Raises:
        ValidationError: the file is missing, not HDF5, or lacks the ``coords``/``features`` datasets.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "coords" not in f or "features" not in f:
                raise ValidationError(
                    f"{path.name} has no 'coords' and 'features' datasets (has {sorted(f.keys())})",
                    hint="is it a patch-coordinates file rather than a features file?",
                )
            attrs = {key: _plain(value) for key, value in f.attrs.items()}
            attrs.update({key: _plain(value) for key, value in f["coords"].attrs.items()})
            coords = np.asarray(f["coords"][:], dtype=np.int64)
            features = np.asarray(f["features"][:], dtype=np.float32)
    except (OSError, KeyError) as exc:
        raise ValidationError(
            f"cannot read feature file {path}: {exc}", hint="check the path; re-create the file"
        ) from exc
    return coords, features, attrs


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()
