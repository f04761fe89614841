"""TCGA barcode parsing on real barcodes from the bundled GDC data, and the edge cases that must not link."""

from __future__ import annotations

import pytest

from oncograph.domain.barcodes import is_tcga_patient_barcode, parse_tcga_barcode


@pytest.mark.parametrize(
    ("barcode", "level", "patient"),
    [
        ("TCGA-BH-A0EA", "patient", "TCGA-BH-A0EA"),
        ("TCGA-BH-A0EA-01A", "sample", "TCGA-BH-A0EA"),
        ("TCGA-B6-A0RI-10A", "sample", "TCGA-B6-A0RI"),
        ("TCGA-BH-A0EA-01A-11", "portion", "TCGA-BH-A0EA"),
        ("TCGA-BH-A0EA-01A-11D", "analyte", "TCGA-BH-A0EA"),
        ("TCGA-BH-A0EA-01A-11D-A10X-02", "aliquot", "TCGA-BH-A0EA"),
        ("TCGA-AN-A0FL-01Z-00-DX1", "slide", "TCGA-AN-A0FL"),
        ("TCGA-BH-A0EA-01A-01-TSA", "slide", "TCGA-BH-A0EA"),
        ("TCGA-B6-A0RH-01A-02-TSB", "slide", "TCGA-B6-A0RH"),
        ("TCGA-06-1802-01A-01-BS1", "slide", "TCGA-06-1802"),
    ],
)
def test_levels_and_patient(barcode: str, level: str, patient: str) -> None:
    parsed = parse_tcga_barcode(barcode)
    assert parsed is not None
    assert (parsed.level, parsed.patient) == (level, patient)
    assert is_tcga_patient_barcode(barcode) == (level == "patient")


@pytest.mark.parametrize(
    "value",
    [
        "TCGA-AY-4070A",  # IDC tcga_coad PatientID with a trailing letter (not in GDC as such)
        "tcga-bh-a0ea",  # case matters
        "TCGA-BH-A0E",  # too short
        "C3L-00001",  # CPTAC: links only where a source declares it
        "01BR001",
        "TCGA-BH-A0EA ",
        "",
    ],
)
def test_not_patient_barcodes(value: str) -> None:
    assert not is_tcga_patient_barcode(value)


def test_sample_type() -> None:
    parsed = parse_tcga_barcode("TCGA-BH-A0EA-11A")
    assert parsed is not None and parsed.sample_type == "11"
    whole = parse_tcga_barcode("TCGA-BH-A0EA")
    assert whole is not None and whole.sample_type is None
