"""TCGA barcodes: what a barcode names, and which patient it belongs to.

``TCGA-BH-A0EA`` is a patient (participant); longer barcodes name a sample (``-01A``), portion (``-11``),
analyte (``D``), aliquot (``-A10X-02``), or a slide (``-01Z-00-DX1``). Only the exact 12-character form is a
patient id; a longer barcode belongs to the patient of its first 12 characters but is never that patient.
Anything else (``TCGA-AY-4070A``, lower case, CPTAC ids) is not a TCGA patient barcode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

BarcodeLevel = Literal["patient", "sample", "portion", "analyte", "aliquot", "slide"]

_PATIENT = r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}"
_PATTERNS: tuple[tuple[BarcodeLevel, re.Pattern[str]], ...] = (
    ("patient", re.compile(rf"^{_PATIENT}$")),
    ("sample", re.compile(rf"^{_PATIENT}-\d{{2}}[A-Z]?$")),
    ("slide", re.compile(rf"^{_PATIENT}-\d{{2}}[A-Z]-\d{{2}}-(?:DX|TS|BS|MS)[A-Z0-9]*$")),
    ("portion", re.compile(rf"^{_PATIENT}-\d{{2}}[A-Z]-\d{{2}}$")),
    ("analyte", re.compile(rf"^{_PATIENT}-\d{{2}}[A-Z]-\d{{2}}[A-Z]$")),
    ("aliquot", re.compile(rf"^{_PATIENT}-\d{{2}}[A-Z]-\d{{2}}[A-Z]-[A-Z0-9]{{4}}-\d{{2}}$")),
)


@dataclass(frozen=True, slots=True)
class TcgaBarcode:
    text: str
    level: BarcodeLevel

    @property
    def patient(self) -> str:
        """The 12-character patient barcode this barcode belongs to."""
        return self.text[:12]

    @property
    def sample_type(self) -> str | None:
        """``01`` (Primary Tumor), ``10`` (Blood Derived Normal), ``11`` (Solid Tissue Normal), ..."""
        return self.text[13:15] if self.level != "patient" else None


def parse_tcga_barcode(value: str) -> TcgaBarcode | None:
    """Parse a TCGA barcode; None when ``value`` is not one (no guessing, no case folding)."""
    for level, pattern in _PATTERNS:
        if pattern.match(value):
            return TcgaBarcode(value, level)
    return None


def is_tcga_patient_barcode(value: str) -> bool:
    """True only for the exact 12-character participant barcode."""
    parsed = parse_tcga_barcode(value)
    return parsed is not None and parsed.level == "patient"
