"""A series' pixels to encoder input: decode a volume, window or normalise it, resample it, stack 2.5D slices.

Key contracts:

- Pixel values go through the modality LUT (RescaleSlope/Intercept) for every modality: Hounsfield units for
  CT, the scanner's rescaled values for MR (Philips MR sets RescaleSlope per series). Pixels equal to
  PixelPaddingValue (outside the field of view) take the slice's lowest other value (-1024 HU on our CT).
- :func:`scan_slices` returns, with the slices, the details of how they were made (to record with them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut

from oncograph.embeddings.scans.series import Series, _float
from oncograph.errors import ValidationError

#: CT display windows as (center, width) in HU; the common presets listed by Radiopaedia ("Windowing (CT)").
WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "soft_tissue": (40.0, 400.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
}
DEFAULT_CT_WINDOW = "soft_tissue"


@dataclass(frozen=True)
class Volume:
    """A float32 (z, y, x) array with its voxel spacing (z, y, x) in mm."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    modality: str | None = None

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValidationError(f"a volume is 3-D (z, y, x); got an array of shape {self.array.shape}")


def load_volume(series: Series) -> Volume:
    """Decode the series into a float32 (z, y, x) volume through the modality LUT (HU for CT).

    Raises:
        ValidationError: a file fails to decode or no longer matches the series' image size.
    """
    array = np.empty((len(series.files), series.rows, series.columns), dtype=np.float32)
    for index, path in enumerate(series.files):
        array[index] = _read_slice(path, series)
    return Volume(
        array=array, spacing=(_z_spacing(series)[0], *series.pixel_spacing), modality=series.modality
    )


def _read_slice(path: Path, series: Series) -> np.ndarray:
    try:
        dataset = pydicom.dcmread(path)
        stored = dataset.pixel_array
        values = _unpad(stored, np.asarray(apply_modality_lut(stored, dataset), dtype=np.float32), dataset)
    except Exception as exc:  # pydicom raises many types for broken or undecodable pixel data
        raise ValidationError(
            f"could not decode the pixel data of {path}: {exc}",
            hint="the file may be corrupt, or its transfer syntax needs a decoder plugin (pylibjpeg, gdcm)",
        ) from exc
    if values.shape != (series.rows, series.columns):
        raise ValidationError(
            f"{path} holds a {values.shape} image, series {series.series_uid} is {series.rows}x{series.columns}",
            hint="the files changed since find_series: run it again",
        )
    return values


def _unpad(stored: np.ndarray, values: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Set PixelPaddingValue pixels (outside the reconstruction circle) to the slice's lowest other value.

    Left as is they sit far below air (-3024 HU for a GE CT): a lung window would draw the circle's edge
    and MR percentiles would count them.
    """
    pad = _float(dataset, "PixelPaddingValue")
    if pad is None:
        return values
    limit = _float(dataset, "PixelPaddingRangeLimit")
    low, high = (pad, pad) if limit is None else sorted((pad, limit))
    padded = (stored >= low) & (stored <= high)
    if padded.any() and not padded.all():
        values[padded] = values[~padded].min()
    return values


def _z_spacing(series: Series) -> tuple[float, str | None]:
    if series.slice_spacing:
        return series.slice_spacing, None
    if series.slice_thickness:
        return series.slice_thickness, "z spacing from SliceThickness (one slice)"
    return 1.0, "z spacing unknown: 1 mm assumed"


def window(volume: np.ndarray, preset: str | tuple[float, float]) -> np.ndarray:
    """Map HU to uint8 grey levels linearly: ``center - width/2`` → 0, ``center + width/2`` → 255, clipped.

    Raises:
        ValidationError: unknown preset name, or a width that is not positive.
    """
    center, width = window_values(preset)
    scaled = (np.asarray(volume, dtype=np.float32) - (center - width / 2)) * np.float32(255.0 / width)
    return _to_uint8(scaled)


def window_values(preset: str | tuple[float, float]) -> tuple[float, float]:
    """The (center, width) of a preset name or pair, validated."""
    if isinstance(preset, str):
        if preset not in WINDOWS:
            raise ValidationError(
                f"unknown window preset {preset!r}",
                hint=f"use one of {', '.join(WINDOWS)}, or a (center, width) pair in HU",
            )
        return WINDOWS[preset]
    try:
        center, width = (float(v) for v in preset)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"a window is a (center, width) pair in HU, got {preset!r}") from exc
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise ValidationError(f"window {preset!r} needs a finite center and a positive width")
    return center, width


def normalise_mr(volume: np.ndarray, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """Scale a volume to uint8 between its ``low`` and ``high`` percentiles (clipped); constant → zeros.

    Raises:
        ValidationError: percentiles outside 0 ≤ low < high ≤ 100, or an empty volume.
    """
    if not 0.0 <= low < high <= 100.0:
        raise ValidationError(f"percentiles need 0 <= low < high <= 100, got low={low}, high={high}")
    values = np.asarray(volume, dtype=np.float32)
    if values.size == 0:
        raise ValidationError("cannot normalise an empty volume")
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if hi <= lo:
        return np.zeros(values.shape, dtype=np.uint8)
    return _to_uint8((values - np.float32(lo)) * np.float32(255.0 / (hi - lo)))


def _to_uint8(scaled: np.ndarray) -> np.ndarray:
    grey: np.ndarray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return grey


def resample(volume: Volume, spacing: tuple[float, float, float] | None) -> Volume:
    """Linearly resample to ``spacing`` (z, y, x mm) over the same extent; ``None`` returns the volume as is.

    A single-slice volume keeps its z spacing. Voxels at the edges take the nearest input value.

    Raises:
        ValidationError: a spacing that is not three positive numbers.
    """
    if spacing is None:
        return volume
    target = _target_spacing(volume, spacing)
    if target == volume.spacing:
        return volume
    array = _resample_array(volume.array, volume.spacing, target)
    return Volume(array=array, spacing=target, modality=volume.modality)


def _resample_array(
    array: np.ndarray, spacing: tuple[float, float, float], target: tuple[float, float, float]
) -> np.ndarray:
    # in index units of the input (its spacing 1, origin 0): the scale is target / spacing per axis, and the
    # grids are corner-aligned so the output covers the input's physical extent
    scale = [t / s for s, t in zip(spacing[::-1], target[::-1], strict=True)]  # x, y, z like SimpleITK
    size = [max(1, round(n / k)) for n, k in zip(array.shape[::-1], scale, strict=True)]
    image = sitk.Resample(
        sitk.GetImageFromArray(np.ascontiguousarray(array, dtype=np.float32)),
        size=size,  # type: ignore[arg-type]  # SimpleITK's hint says int; the size overload takes a vector
        interpolator=sitk.sitkLinear,
        outputOrigin=[0.5 * (k - 1.0) for k in scale],
        outputSpacing=scale,
        outputDirection=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        outputPixelType=sitk.sitkFloat32,
        useNearestNeighborExtrapolator=True,  # edge voxels take the nearest value, not a fill value
    )
    return np.asarray(sitk.GetArrayFromImage(image), dtype=np.float32)


def _target_spacing(volume: Volume, spacing: tuple[float, float, float]) -> tuple[float, float, float]:
    try:
        z, y, x = (float(v) for v in spacing)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"spacing is (z, y, x) in mm, got {spacing!r}") from exc
    if not all(math.isfinite(v) and v > 0 for v in (z, y, x)):
        raise ValidationError(f"spacing needs three positive numbers, got {spacing!r}")
    return (volume.spacing[0] if volume.array.shape[0] == 1 else z), y, x


def slices_25d(volume_u8: np.ndarray, size: int = 224) -> np.ndarray:
    """Stack each slice with its neighbours as 3 channels: (z, size, size, 3) uint8, channels i-1, i, i+1.

    Neighbours are clamped at the ends. Each slice is resized (PIL bilinear) to size × size once, so channel 0
    of slice i is channel 1 of slice i-1. The aspect ratio is not kept.

    Raises:
        ValidationError: not a non-empty 3-D uint8 array, or size < 1.
    """
    if volume_u8.dtype != np.uint8 or volume_u8.ndim != 3 or volume_u8.shape[0] == 0:
        raise ValidationError(
            f"slices_25d takes a non-empty (z, y, x) uint8 volume, got {volume_u8.dtype} {volume_u8.shape}",
            hint="window() a CT volume or normalise_mr() an MR volume first",
        )
    if size < 1:
        raise ValidationError(f"size must be at least 1, got {size}")
    resized = np.stack([_resize(plane, size) for plane in volume_u8])
    index = np.arange(len(resized))
    below, above = np.maximum(index - 1, 0), np.minimum(index + 1, len(resized) - 1)
    return np.stack([resized[below], resized, resized[above]], axis=-1)


def _resize(plane: np.ndarray, size: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(plane))
    resized: np.ndarray = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return resized


def scan_slices(
    series: Series,
    *,
    window_preset: str | None = None,
    spacing: tuple[float, float, float] | None = None,
    size: int = 224,
) -> tuple[np.ndarray, dict[str, Any]]:
    """A series as 2.5D slices for an encoder, and the details of how they were made (to record with them).

    CT is windowed in HU (default ``"soft_tissue"``); MR and other modalities are scaled between their 1st and
    99th percentiles (MONOCHROME1 images inverted so that bright means high).

    Raises:
        ValidationError: a window preset for a non-CT series, an unknown preset, or a file that fails to decode.
    """
    if window_preset is not None and series.modality != "CT":
        raise ValidationError(
            f"window presets are HU ranges and series {series.series_uid} is {series.modality or 'no modality'}",
            hint="leave window_preset unset: non-CT series are scaled by percentiles",
        )
    volume = load_volume(series)
    resampled = resample(volume, spacing)
    grey, intensity = _grey(resampled.array, series, window_preset)
    slices = slices_25d(grey, size)
    z_note = _z_spacing(series)[1]
    details: dict[str, Any] = {
        "series_uid": series.series_uid,
        "modality": series.modality,
        **intensity,
        "spacing_before": list(volume.spacing),
        "spacing_after": list(resampled.spacing),
        "shape_before": list(volume.array.shape),
        "shape_after": list(resampled.array.shape),
        "n_slices": int(slices.shape[0]),
        "size": size,
        "ordering": series.ordering,
        "notes": [*series.notes, *([z_note] if z_note else [])],
    }
    return slices, details


def _grey(array: np.ndarray, series: Series, preset: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    if series.modality == "CT":
        name = preset or DEFAULT_CT_WINDOW
        center, width = window_values(name)
        return window(array, (center, width)), {
            "window": {"preset": name, "center": center, "width": width},
            "normalise": None,
        }
    grey = normalise_mr(array)
    inverted = series.photometric == "MONOCHROME1"
    return (255 - grey if inverted else grey), {
        "window": None,
        "normalise": {"low": 1.0, "high": 99.0, "inverted": inverted},
    }
