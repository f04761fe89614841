"""BCR Biotab clinical patient file, sample sheets (v1, 2025 v2) and gdc-client manifests."""

from __future__ import annotations

import csv
from pathlib import Path

from oncograph.sources.gdc.portal import read_portal_file

GDC = Path(__file__).resolve().parents[4] / "data" / "gdc"
EXPORTS = GDC / "gdc_portal_exports"
BIOTAB = EXPORTS / "gdc_clinical_supplement_BCR_Biotab_clinical_patient_brca_first100_plus3linked.txt"
SHEET_V1 = EXPORTS / "gdc_sample_sheet_TCGA-LIHC_expression.tsv"
SHEET_V2 = EXPORTS / "gdc_sample_sheet_2025_TCGA-BRCA-OV-LUAD_240rows.tsv"
MANIFEST = EXPORTS / "gdc_manifest_2025_TCGA-BRCA-OV-LUAD_240files.txt"
SLIDES = GDC / "gdc_slides" / "gdc_manifest_svs_2_TCGA-BLCA.txt"
PLACEHOLDERS = {"[Not Available]", "[Not Applicable]", "[Unknown]", "[Not Evaluated]", "[Discrepancy]"}


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_biotab_patients() -> None:
    patients = rows_of(BIOTAB)[2:]  # the CDE-name and CDE_ID lines are not patients
    parsed = read_portal_file(BIOTAB)
    assert parsed.format == "biotab_clinical" and parsed.problems == []
    assert len(parsed.records) == len(patients) == 103
    for record, row in zip(parsed.records, patients, strict=True):
        doc = record.document
        assert not record.problems and record.source == "gdc_biotab"
        assert record.entity_id == doc["case_id"] == row["bcr_patient_uuid"].lower()
        assert doc["submitter_id"] == row["bcr_patient_barcode"]
        assert "project" not in doc  # not stated in the file: never guessed
        assert record.raw == [row]

        def value(column: str, row: dict[str, str] = row) -> str | None:
            return None if row[column] in PLACEHOLDERS else row[column]

        assert doc["demographic"]["days_to_birth"] == value("birth_days_to")
        assert doc["demographic"]["days_to_death"] == value("death_days_to")
        assert doc["demographic"]["vital_status"] == value("vital_status")
        (diagnosis,) = doc["diagnoses"]
        assert diagnosis["days_to_last_follow_up"] == value("last_contact_days_to")
        assert diagnosis["ajcc_pathologic_stage"] == value("ajcc_pathologic_tumor_stage")
    linked = {r.document["submitter_id"]: r.entity_id for r in parsed.records}
    assert linked["TCGA-BH-A0EA"] == "1f601832-eee3-48fb-acf5-80c4a454f26e"
    assert linked["TCGA-A2-A3XX"] == "53886143-c1c6-40e9-88e6-e4e5e0271fc8"


def _check_sheet(path: Path, sample_fields: dict[str, str]) -> None:
    rows = rows_of(path)
    parsed = read_portal_file(path)
    assert parsed.format == "sample_sheet" and parsed.problems == []
    assert len(parsed.records) == len(rows)
    for record, row in zip(parsed.records, rows, strict=True):
        assert not record.problems and record.entity_type == "file" and record.source == "gdc_sample_sheet"
        assert record.entity_id == row["File ID"]
        (case,) = record.document["cases"]
        assert case["submitter_id"] == row["Case ID"]
        assert case["project"] == {"project_id": row["Project ID"]}
        (sample,) = case["samples"]
        assert sample == {"submitter_id": row["Sample ID"], **{k: row[c] for c, k in sample_fields.items()}}
        assert record.document["data_type"] == row["Data Type"]


def test_sample_sheet_v1() -> None:
    _check_sheet(SHEET_V1, {"Sample Type": "sample_type"})
    cases = {r.document["cases"][0]["submitter_id"] for r in read_portal_file(SHEET_V1).records}
    assert len(cases) == 81


def test_sample_sheet_2025() -> None:
    _check_sheet(
        SHEET_V2,
        {
            "Tissue Type": "tissue_type",
            "Tumor Descriptor": "tumor_descriptor",
            "Specimen Type": "specimen_type",
            "Preservation Method": "preservation_method",
        },
    )
    cases = {r.document["cases"][0]["submitter_id"] for r in read_portal_file(SHEET_V2).records}
    assert len(cases) == 223


def test_sample_sheet_cells_with_several_ids(tmp_path: Path) -> None:
    """A tumour/normal file lists both samples, repeating the case, as the portal writes it."""
    header, first = SHEET_V1.read_text().splitlines()[:2]
    cells = first.split("\t")
    cells[5] = "TCGA-DD-A1EC, TCGA-DD-A1EC"
    cells[6] = "TCGA-DD-A1EC-01A, TCGA-DD-A1EC-11A"
    cells[7] = "Primary Tumor, Solid Tissue Normal"
    path = tmp_path / "sheet.tsv"
    path.write_text(f"{header}\n" + "\t".join(cells) + "\n")
    (record,) = read_portal_file(path).records
    assert not record.problems
    assert record.document["cases"] == [
        {
            "submitter_id": "TCGA-DD-A1EC",
            "project": {"project_id": "TCGA-LIHC"},
            "samples": [
                {"submitter_id": "TCGA-DD-A1EC-01A", "sample_type": "Primary Tumor"},
                {"submitter_id": "TCGA-DD-A1EC-11A", "sample_type": "Solid Tissue Normal"},
            ],
        }
    ]


def test_manifests() -> None:
    for path, count in ((MANIFEST, 240), (SLIDES, 2)):
        rows = rows_of(path)
        parsed = read_portal_file(path)
        assert parsed.format == "gdc_manifest" and len(parsed.records) == len(rows) == count
        for record, row in zip(parsed.records, rows, strict=True):
            assert not record.problems and record.source == "gdc_manifest"
            assert record.document == {
                "file_id": row["id"],
                "file_name": row["filename"],
                "md5sum": row["md5"],
                "file_size": int(row["size"]),
                "state": row["state"],
            }
            assert record.raw == row


def test_manifest_with_bad_values(tmp_path: Path) -> None:
    header, first = MANIFEST.read_text().splitlines()[:2]
    cells = first.split("\t")
    cells[2], cells[3] = "not-an-md5", "4.2 GB"
    path = tmp_path / "manifest.txt"
    path.write_text(f"{header}\n" + "\t".join(cells) + "\n" + "\t".join(["", *cells[1:]]) + "\n")
    bad, no_id = read_portal_file(path).records
    assert "file_size" not in bad.document
    assert any("md5" in p for p in bad.problems) and any("whole number" in p for p in bad.problems)
    assert no_id.entity_id is None and "missing file_id" in no_id.problems
