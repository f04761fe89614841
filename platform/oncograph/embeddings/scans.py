"""Radiology scans (DICOM CT/MR series) to 2.5D slice stacks that an image encoder can embed.

Why this module exists: an encoder wants small RGB-like images, a scan is a folder of DICOM files. Between the
two sit decisions that change every embedding and so are recorded with it (``scan_slices`` returns them):
which files form a series, in which order, in which intensity scale, at which spacing.

Key contracts:

- ``find_series`` reads headers only (it stops before the pixel data) and never raises for a bad file: each
  file it cannot use is an :class:`Unreadable` with a reason. A file whose pixel data is shorter than its
  header declares is caught here; a file that fails to decode is caught by ``load_volume``
  (:class:`~oncograph.errors.ValidationError` naming the file).
- Slices are sorted ascending along the slice normal (row × column direction cosines) by the projection of
  ImagePositionPatient, the order ITK/GDCM use. Without usable positions the order falls back to
  InstanceNumber, then to the file name, and ``Series.notes`` says so.
- Pixel values go through the modality LUT (RescaleSlope/Intercept) for every modality: Hounsfield units for
  CT, the scanner's rescaled values for MR (Philips MR sets RescaleSlope per series). Pixels equal to
  PixelPaddingValue (outside the field of view) take the slice's lowest other value (-1024 HU on our CT).
- ``series_sha256`` hashes file contents, not paths or order: the same series copied elsewhere has one hash.

The module runs in CPU reader tasks: numpy, pydicom, SimpleITK and Pillow only, no torch.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydicom
import SimpleITK as sitk
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.pixels.processing import apply_modality_lut
from pydicom.tag import BaseTag

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

Ordering = Literal["image_position", "instance_number", "file_name"]

_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})  # Pixel Data, Float and Double Float Pixel Data
_UNDEFINED_LENGTH = 0xFFFFFFFF
_DEFER_BYTES = 4096  # large header values (private blobs, icons) are skipped, never needed here


@dataclass(frozen=True, slots=True)
class Series:
    """One DICOM series as ``find_series`` found it: its files in slice order and its geometry.

    ``positions`` are the slice positions projected on the normal (mm), empty unless ``ordering`` is
    ``"image_position"``. ``slice_spacing`` is the median gap between them (or the header's
    SpacingBetweenSlices/SliceThickness without positions), ``None`` for a single slice.
    """

    series_uid: str
    study_uid: str | None
    patient_id: str | None
    modality: str | None
    files: tuple[Path, ...]
    sop_uids: tuple[str, ...]
    positions: tuple[float, ...]
    rows: int
    columns: int
    pixel_spacing: tuple[float, float]
    slice_spacing: float | None
    ordering: Ordering
    slice_thickness: float | None = None
    photometric: str | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "series_uid": self.series_uid,
            "study_uid": self.study_uid,
            "patient_id": self.patient_id,
            "modality": self.modality,
            "files": [str(p) for p in self.files],
            "sop_uids": list(self.sop_uids),
            "positions": list(self.positions),
            "rows": self.rows,
            "columns": self.columns,
            "pixel_spacing": list(self.pixel_spacing),
            "slice_spacing": self.slice_spacing,
            "slice_thickness": self.slice_thickness,
            "photometric": self.photometric,
            "ordering": self.ordering,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Unreadable:
    path: Path
    reason: str


@dataclass(frozen=True)
class Volume:
    """A float32 (z, y, x) array with its voxel spacing (z, y, x) in mm."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    modality: str | None = None

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValidationError(f"a volume is 3-D (z, y, x); got an array of shape {self.array.shape}")


@dataclass(frozen=True, slots=True)
class _Header:
    path: Path
    sop_uid: str
    series_uid: str
    study_uid: str | None
    patient_id: str | None
    modality: str | None
    rows: int
    columns: int
    pixel_spacing: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    position: tuple[float, ...] | None
    instance_number: int | None
    slice_thickness: float | None
    spacing_between: float | None
    photometric: str | None
    notes: tuple[str, ...] = ()


def find_series(paths: Sequence[Path]) -> tuple[list[Series], list[Unreadable]]:
    """Group DICOM files (given directly or in folders, searched recursively) into series.

    Raises:
        ValidationError: a given path does not exist.
    """
    headers: list[_Header] = []
    unreadable: list[Unreadable] = []
    for path in _expand(paths):
        found = _read_header(path)
        if isinstance(found, Unreadable):
            unreadable.append(found)
        else:
            headers.append(found)
    groups: dict[str, list[_Header]] = {}
    for header in headers:
        groups.setdefault(header.series_uid, []).append(header)
    series: list[Series] = []
    for group in groups.values():
        one, left_out = _build_series(group)
        series.append(one)
        unreadable.extend(left_out)
    series.sort(key=lambda s: (s.patient_id or "", s.study_uid or "", s.series_uid))
    unreadable.sort(key=lambda u: str(u.path))
    return series, unreadable


def _expand(paths: Sequence[Path] | Path | str) -> list[Path]:
    given = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    files: dict[Path, Path] = {}
    for path in given:
        if not path.exists():
            raise ValidationError(f"{path} does not exist", hint="pass DICOM files or folders that hold them")
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            files.setdefault(candidate.resolve(), candidate)
    return list(files.values())


def _read_header(path: Path) -> _Header | Unreadable:
    try:
        dataset, pixels = _read_until_pixels(path)
        problem = _header_problem(dataset, pixels, path.stat().st_size)
        return Unreadable(path, problem) if problem else _header(dataset, path)
    except InvalidDicomError:
        return Unreadable(path, "not a DICOM file (no 'DICM' file header)")
    except Exception as exc:  # a malformed file must not stop the scan of the others
        return Unreadable(path, f"the DICOM header could not be read ({type(exc).__name__}: {exc})")


def _read_until_pixels(path: Path) -> tuple[Dataset, tuple[int, int] | None]:
    """Read the header and stop at the pixel data, returning (offset, length) of its value when present."""
    found: list[tuple[int, int]] = []
    with path.open("rb") as fp:

        def at_pixels(tag: BaseTag, vr: str | None, length: int) -> bool:
            if tag in _PIXEL_TAGS:
                found.append((fp.tell(), length))
                return True
            return False

        dataset = read_partial(fp, stop_when=at_pixels, defer_size=_DEFER_BYTES)
    return dataset, (found[0] if found else None)


def _header_problem(dataset: Dataset, pixels: tuple[int, int] | None, size: int) -> str | None:
    if pixels is None:
        sop_class = _sop_class(dataset)
        if "Image Storage" in sop_class:  # an image class without pixels: the file ends early
            return f"truncated: no pixel data although its SOP class is {sop_class}"
        return f"no pixel data ({sop_class})"
    offset, length = pixels
    if length != _UNDEFINED_LENGTH and offset + length > size:
        return f"truncated: the header declares {length} bytes of pixel data, the file holds {max(size - offset, 0)}"
    for keyword in ("SeriesInstanceUID", "SOPInstanceUID", "Rows", "Columns"):
        if _text(dataset, keyword) is None:
            return f"no {keyword} ({_sop_class(dataset)})"
    frames = _int(dataset, "NumberOfFrames") or 1
    if frames > 1:
        return f"a multi-frame image ({frames} frames): only single-frame series are read"
    samples = _int(dataset, "SamplesPerPixel") or 1
    if samples != 1:
        colour = _text(dataset, "PhotometricInterpretation")
        return f"a colour image (SamplesPerPixel={samples}, {colour}): only greyscale scans are read"
    return None


def _header(dataset: Dataset, path: Path) -> _Header:
    spacing = _floats(dataset, "PixelSpacing", 2)
    notes: tuple[str, ...] = ()
    if spacing is None and (spacing := _floats(dataset, "ImagerPixelSpacing", 2)) is not None:
        notes += ("pixel spacing from ImagerPixelSpacing (no PixelSpacing)",)
    if (pad := _float(dataset, "PixelPaddingValue")) is not None:
        notes += (f"PixelPaddingValue {pad:g}: padded pixels set to each slice's lowest other value",)
    return _Header(
        path=path,
        sop_uid=str(_text(dataset, "SOPInstanceUID")),
        series_uid=str(_text(dataset, "SeriesInstanceUID")),
        study_uid=_text(dataset, "StudyInstanceUID"),
        patient_id=_text(dataset, "PatientID"),
        modality=_text(dataset, "Modality"),
        rows=int(dataset.Rows),
        columns=int(dataset.Columns),
        pixel_spacing=spacing,
        orientation=_floats(dataset, "ImageOrientationPatient", 6),
        position=_floats(dataset, "ImagePositionPatient", 3),
        instance_number=_int(dataset, "InstanceNumber"),
        slice_thickness=_float(dataset, "SliceThickness"),
        spacing_between=_float(dataset, "SpacingBetweenSlices"),
        photometric=_text(dataset, "PhotometricInterpretation"),
        notes=notes,
    )


def _sop_class(dataset: Dataset) -> str:
    uid = dataset.get("SOPClassUID") or dataset.get("file_meta", Dataset()).get("MediaStorageSOPClassUID")
    return uid.name if uid else "no SOP class"


def _text(dataset: Dataset, keyword: str) -> str | None:
    value = dataset.get(keyword)
    text = "" if value is None else str(value).strip()
    return text or None


def _int(dataset: Dataset, keyword: str) -> int | None:
    value = _float(dataset, keyword)
    return int(value) if value is not None and value.is_integer() else None


def _float(dataset: Dataset, keyword: str) -> float | None:
    try:
        value = float(dataset.get(keyword))
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _floats(dataset: Dataset, keyword: str, count: int) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in dataset.get(keyword) or ())
    except (TypeError, ValueError):
        return None
    return values if len(values) == count and all(math.isfinite(v) for v in values) else None


def _build_series(group: list[_Header]) -> tuple[Series, list[Unreadable]]:
    unique, notes = _drop_duplicates(group)
    kept, left_out = _majority_geometry(unique)
    ordering, ordered, positions, order_notes = _order(kept)
    slice_spacing, spacing_notes = _slice_spacing(ordering, positions, ordered)
    first = ordered[0]
    pixel_spacing = first.pixel_spacing
    if pixel_spacing is None:
        notes.append("no PixelSpacing: 1 mm pixels assumed")
    return Series(
        series_uid=first.series_uid,
        study_uid=first.study_uid,
        patient_id=first.patient_id,
        modality=first.modality,
        files=tuple(h.path for h in ordered),
        sop_uids=tuple(h.sop_uid for h in ordered),
        positions=positions,
        rows=first.rows,
        columns=first.columns,
        pixel_spacing=(pixel_spacing[0], pixel_spacing[1]) if pixel_spacing else (1.0, 1.0),
        slice_spacing=slice_spacing,
        ordering=ordering,
        slice_thickness=first.slice_thickness,
        photometric=first.photometric,
        notes=(*first.notes, *notes, *order_notes, *spacing_notes),
    ), left_out


def _drop_duplicates(group: list[_Header]) -> tuple[list[_Header], list[str]]:
    unique: dict[str, _Header] = {}
    notes: list[str] = []
    for header in group:
        if header.sop_uid in unique:
            notes.append(f"{header.path} skipped: the same SOP instance as {unique[header.sop_uid].path}")
        else:
            unique[header.sop_uid] = header
    return list(unique.values()), notes


def _geometry(header: _Header) -> tuple[int, int, tuple[float, ...] | None]:
    orientation = tuple(round(v, 3) for v in header.orientation) if header.orientation else None
    return header.rows, header.columns, orientation


def _majority_geometry(headers: list[_Header]) -> tuple[list[_Header], list[Unreadable]]:
    """Keep the files that share the most common size and orientation; the rest are left out, with why."""
    counts = Counter(_geometry(h) for h in headers)
    majority = max(counts, key=lambda g: counts[g])  # ties: the first seen (Counter keeps insertion order)
    kept = [h for h in headers if _geometry(h) == majority]
    left_out = [
        Unreadable(
            h.path,
            f"left out of series {h.series_uid}: its image ({_describe(_geometry(h))}) differs from "
            f"the {len(kept)} other files ({_describe(majority)})",
        )
        for h in headers
        if _geometry(h) != majority
    ]
    return kept, left_out


def _describe(geometry: tuple[int, int, tuple[float, ...] | None]) -> str:
    rows, columns, orientation = geometry
    return f"{rows}x{columns}, orientation {'unknown' if orientation is None else list(orientation)}"


def _order(headers: list[_Header]) -> tuple[Ordering, list[_Header], tuple[float, ...], list[str]]:
    normal = _normal(headers[0].orientation)
    if normal is not None and all(h.position is not None for h in headers):
        projections = [round(float(np.dot(np.asarray(h.position), normal)), 6) for h in headers]
        if len({round(p, 3) for p in projections}) == len(projections):
            pairs = sorted(zip(projections, range(len(headers)), strict=True))
            return "image_position", [headers[i] for _, i in pairs], tuple(p for p, _ in pairs), []
        reason = "files share an ImagePositionPatient (several phases, echoes or time points?)"
    else:
        reason = "ImagePositionPatient or ImageOrientationPatient missing"
    numbers = [h.instance_number for h in headers]
    if None not in numbers and len(set(numbers)) == len(numbers):
        ordered = sorted(headers, key=lambda h: h.instance_number or 0)
        return "instance_number", ordered, (), [f"ordered by InstanceNumber: {reason}"]
    ordered = sorted(headers, key=lambda h: str(h.path))
    return "file_name", ordered, (), [f"ordered by file name: {reason}; InstanceNumber missing or repeated"]


def _normal(orientation: tuple[float, ...] | None) -> np.ndarray | None:
    if orientation is None:
        return None
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    length = float(np.linalg.norm(normal))
    return normal / length if length > 1e-6 else None


def _slice_spacing(
    ordering: Ordering, positions: tuple[float, ...], headers: list[_Header]
) -> tuple[float | None, list[str]]:
    if len(headers) == 1:
        return None, []
    if ordering == "image_position":
        gaps = np.diff(np.asarray(positions))
        median = round(float(np.median(gaps)), 6)
        if float(gaps.max() - gaps.min()) > 0.01 * median + 1e-3:
            return median, [
                f"uneven slice gaps ({gaps.min():.4g} to {gaps.max():.4g} mm; missing slices?): "
                f"the volume assumes {median:.4g} mm"
            ]
        return median, []
    header = headers[0].spacing_between or headers[0].slice_thickness
    return header, [f"slice spacing from the header ({header} mm), not from positions"]


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


def series_sha256(series: Series) -> str:
    """sha256 of the sorted per-file sha256 hex digests joined by newlines: content-based, order-independent.

    Raises:
        ValidationError: a file cannot be read.
    """
    digests = sorted(_file_sha256(path) for path in series.files)
    return hashlib.sha256("\n".join(digests).encode("ascii")).hexdigest()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fp:
            while chunk := fp.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise ValidationError(
            f"cannot read {path}: {exc}", hint="the series' files moved or vanished"
        ) from exc
    return digest.hexdigest()
