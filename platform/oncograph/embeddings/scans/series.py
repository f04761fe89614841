"""DICOM files to series, from headers only: which files form a series, in which order, at which spacing.

Key contracts:

- ``find_series`` reads headers only (it stops before the pixel data) and never raises for a bad file: each
  file it cannot use is an :class:`Unreadable` with a reason. A file whose pixel data is shorter than its
  header declares is caught here; a file that fails to decode is caught by ``load_volume``
  (:class:`~oncograph.errors.ValidationError` naming the file).
- Slices are sorted ascending along the slice normal (row × column direction cosines) by the projection of
  ImagePositionPatient, the order ITK/GDCM use. Without usable positions the order falls back to
  InstanceNumber, then to the file name, and ``Series.notes`` says so.
- ``series_sha256`` hashes file contents, not paths or order: the same series copied elsewhere has one hash.
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
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_partial
from pydicom.tag import BaseTag

from oncograph.errors import ValidationError

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
