"""DICOM whole-slide images (IDC ``SM`` series) among a run's slide inputs: one slide per series.

A DICOM-WSI slide is a *series* of files (one instance per pyramid level, plus thumbnail, label and overview
instances) that OpenSlide 4 opens from any one of them, finding the rest in the same folder. So the slide
inputs of a run are split here: every file with a DICOM preamble is read up to its pixels with pydicom; files
of the VL Whole Slide Microscopy Image Storage class are grouped by SeriesInstanceUID into one
:class:`DicomSlide` (checksum: sha256 over the sorted files' sha256); everything else passes through as a file.
A DICOM file that is not a slide (a CT slice named by mistake) or whose series spans several folders is a
failure with its reason, never a guess.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from oncograph.embeddings.inputs import LocalInput

#: VL Whole Slide Microscopy Image Storage.
WSI_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"


@dataclass(frozen=True, slots=True)
class DicomSlide:
    series_uid: str
    files: tuple[LocalInput, ...]
    """Sorted by path; OpenSlide opens the series from the first."""
    image_types: tuple[str, ...]
    """Each instance's ImageType value 3 (VOLUME, THUMBNAIL, LABEL, OVERVIEW), in ``files`` order."""

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for item in sorted(self.files, key=lambda i: i.sha256):
            digest.update(bytes.fromhex(item.sha256))
        return digest.hexdigest()

    @property
    def folder(self) -> Path:
        return self.files[0].path.parent


def is_dicom(path: Path) -> bool:
    """True for a file with the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    try:
        with path.open("rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def split_dicom_slides(
    items: Sequence[LocalInput],
) -> tuple[list[DicomSlide], list[LocalInput], list[tuple[str, str]]]:
    """``(slides, other files, failures)``: DICOM-WSI files grouped by series; non-DICOM files untouched."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    groups: dict[str, list[tuple[LocalInput, str]]] = defaultdict(list)
    rest: list[LocalInput] = []
    failures: list[tuple[str, str]] = []
    for item in items:
        if not is_dicom(item.path):
            rest.append(item)
            continue
        try:
            header = pydicom.dcmread(item.path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError) as exc:
            failures.append((item.source_uri, f"unreadable DICOM header: {exc}"))
            continue
        sop_class = str(getattr(header, "SOPClassUID", ""))
        uid = str(getattr(header, "SeriesInstanceUID", "") or "")
        if sop_class != WSI_SOP_CLASS:
            failures.append(
                (
                    item.source_uri,
                    f"a DICOM file of SOP class {sop_class or 'unknown'} ({getattr(header, 'Modality', '?')}), "
                    "not a whole-slide image: embed it with `oncograph embed scans`",
                )
            )
            continue
        if not uid:
            failures.append((item.source_uri, "a DICOM whole-slide image without a SeriesInstanceUID"))
            continue
        image_type = list(getattr(header, "ImageType", []) or [])
        groups[uid].append((item, str(image_type[2]) if len(image_type) > 2 else ""))
    slides: list[DicomSlide] = []
    for uid, members in sorted(groups.items()):
        members.sort(key=lambda m: str(m[0].path))
        folders = {m[0].path.parent for m in members}
        if len(folders) > 1:
            failures.append(
                (
                    str(members[0][0].path.parent),
                    f"DICOM-WSI series {uid} spans {len(folders)} folders; OpenSlide reads a series from one "
                    "folder: put its files together",
                )
            )
            continue
        slides.append(DicomSlide(uid, tuple(m[0] for m in members), tuple(m[1] for m in members)))
    return slides, rest, failures


__all__ = ["WSI_SOP_CLASS", "DicomSlide", "is_dicom", "split_dicom_slides"]
