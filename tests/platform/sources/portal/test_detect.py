"""Format detection from content, on every bundled GDC file, plus unknown and broken layouts."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from oncograph.errors import InputFormatError
from oncograph.sources.gdc.portal import SUPPORTED_FORMATS, detect_format, read_portal_file

GDC = Path(__file__).resolve().parents[4] / "data" / "gdc"
EXPORTS = GDC / "gdc_portal_exports"
PORTAL_JSON = GDC / "gdc_portal_json"
API_JSON = GDC / "gdc_api_json"

EXPECTED = {
    EXPORTS / "gdc_clinical_TCGA-COAD_portal_v2_2025_first60cases.tsv": "clinical_tsv_v2",
    EXPORTS / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv": "clinical_tsv_v2",
    EXPORTS / "gdc_portal_v2_TCGA-LUAD_exposure_first60cases.tsv": "exposure_tsv",
    EXPORTS / "gdc_portal_v2_TCGA-LUAD_follow_up_first60cases.tsv": "follow_up_tsv",
    EXPORTS / "gdc_portal_v2_TCGA-LUAD_pathology_detail_first60cases.tsv": "pathology_detail_tsv",
    EXPORTS / "gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv": "family_history_tsv",
    EXPORTS / "gdc_clinical_TCGA-LIHC_portal_v1_2020s.tsv": "clinical_tsv_v1",
    EXPORTS / "gdc_clinical_supplement_BCR_Biotab_clinical_patient_brca_first100_plus3linked.txt": (
        "biotab_clinical"
    ),
    EXPORTS / "gdc_sample_sheet_TCGA-LIHC_expression.tsv": "sample_sheet",
    EXPORTS / "gdc_sample_sheet_2025_TCGA-BRCA-OV-LUAD_240rows.tsv": "sample_sheet",
    EXPORTS / "gdc_manifest_2025_TCGA-BRCA-OV-LUAD_240files.txt": "gdc_manifest",
    GDC / "gdc_slides" / "gdc_manifest_svs_2_TCGA-BLCA.txt": "gdc_manifest",
    EXPORTS / "gdc_portal_v2_metadata.cart_TCGA-LUAD_STAR_counts_50files.json": "portal_file_metadata_json",
    PORTAL_JSON / "gdc_metadata_cart_TCGA-LIHC_CNV_2018_1692files.json": "portal_file_metadata_json",
    PORTAL_JSON / "gdc_metadata_repository_TCGA-BRCA_STAR_counts_2025_692files.json": (
        "portal_file_metadata_json"
    ),
    PORTAL_JSON / "gdc_clinical_TCGA-CHOL_2024_51cases.json": "portal_clinical_json",
    PORTAL_JSON / "gdc_clinical_TCGA-BRCA_2019_1036cases_tumor_stage.json": "portal_clinical_json",
    PORTAL_JSON / "gdc_clinical_TCGA-PAAD_cases_selection_2022_185cases.json": "portal_clinical_json",
    PORTAL_JSON / "gdc_clinical_CPTAC-3_2025_279cases.json": "portal_clinical_json",
    PORTAL_JSON / "gdc_biospecimen_TCGA-CHOL_2024_51cases.json": "portal_biospecimen_json",
    PORTAL_JSON / "gdc_cases_table_TCGA-PAAD_2022_185cases.json": "portal_cases_table_json",
    PORTAL_JSON / "gdc_cases_table_TCGA-LIHC_2019_375cases.json": "portal_cases_table_json",
    PORTAL_JSON / "gdc_files_table_TCGA-CHOL_htseq_2016_45files.json": "portal_files_table_json",
    PORTAL_JSON / "gdc_files_table_TCGA-BRCA_htseq_2019_1164files.json": "portal_files_table_json",
    PORTAL_JSON / "gdc_files_table_TCGA-LIHC_miRNA_2018_425files.json": "portal_files_table_json",
    PORTAL_JSON / "gdc_api_cases_TCGA-BRCA_2026_50cases_few_fields.json": "api_hits_json",
    PORTAL_JSON / "gdc_api_files_slides_TCGA-06-1802_GBM_2025.json": "api_hits_json",
    PORTAL_JSON / "gdc_api_files_slides_TCGA-AN-A046_BRCA_2025_3files.json": "api_hits_json",
    PORTAL_JSON / "gdc_api_files_slides_TCGA-BH-A0EA_BRCA_2025.json": "api_hits_json",
    PORTAL_JSON / "gdc_api_files_slides_TCGA-BL-A0C8_BLCA_2025_6files.json": "api_hits_json",
}


def test_every_bundled_portal_file_is_listed() -> None:
    bundled = {p for p in [*EXPORTS.iterdir(), *PORTAL_JSON.glob("*.json"), *(GDC / "gdc_slides").iterdir()]}
    assert bundled == set(EXPECTED)


@pytest.mark.parametrize("path", sorted(EXPECTED), ids=lambda p: p.name)
def test_detects_every_bundled_file(path: Path) -> None:
    assert detect_format(path) == EXPECTED[path]


@pytest.mark.parametrize("path", sorted(EXPECTED), ids=lambda p: p.name)
def test_detection_ignores_the_file_name(path: Path, tmp_path: Path) -> None:
    renamed = tmp_path / "download.dat"
    shutil.copyfile(path, renamed)
    assert detect_format(renamed) == EXPECTED[path]


def _unwrap(name: str, tmp_path: Path) -> Path:
    """The gdc_api_json fixtures wrap the real API response under "response"; write that response alone."""
    wrapped = json.loads((API_JSON / name).read_text())
    out = tmp_path / name
    out.write_text(json.dumps(wrapped["response"]))
    return out


@pytest.mark.parametrize(
    ("name", "entity_type", "count"),
    [
        ("gdc_cases_filter_submitter_id_TCGA-BH-A0EA.json", "case", 1),
        ("gdc_case_by_uuid_expand_diagnoses_TCGA-BH-A0EA.json", "case", 1),
        ("gdc_cases_expand_follow_ups_5hits.json", "case", 5),
        ("gdc_cases_sort_submitter_id_asc_size10.json", "case", 10),
        ("gdc_file_by_uuid_expand_cases_samples_WGS_BAM.json", "file", 1),
        ("gdc_files_fields_cases_submitter_id_file_name_file_size_10hits.json", "file", 10),
        ("gdc_files_list_size2_2017_legacy_era.json", "file", 2),
        ("gdc_projects_list_from0_size2_sort_project_id.json", "project", 2),
        ("gdc_cases_excludeifany_zero_hits.json", None, 0),
    ],
)
def test_saved_api_responses_are_api_hits(
    name: str, entity_type: str | None, count: int, tmp_path: Path
) -> None:
    parsed = read_portal_file(_unwrap(name, tmp_path))
    assert parsed.format == "api_hits_json"
    assert len(parsed.records) == count
    assert all(r.entity_type == entity_type and r.entity_id and not r.problems for r in parsed.records)


@pytest.mark.parametrize(
    ("name", "seen"),
    [
        ("gdc_annotations_filter_entity_id.json", "first record keys"),
        ("gdc_history_file_1dd28069.json", "'uuid'"),
    ],
)
def test_other_api_responses_are_unknown(name: str, seen: str, tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match=seen):
        detect_format(_unwrap(name, tmp_path))


@pytest.mark.parametrize(
    ("name", "first_column"),
    [
        ("gdc_cases_format_tsv_fields_submitter_id_size5.tsv", "'id', 'submitter_id'"),
        ("gdc_files_post_format_tsv_biospecimen_fields.tsv", "'cases.0.case_id'"),
    ],
)
def test_unknown_tsv_header_names_file_columns_and_formats(name: str, first_column: str) -> None:
    path = API_JSON / name
    with pytest.raises(InputFormatError) as caught:
        read_portal_file(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"first header columns: {first_column}" in message
    assert all(fmt in message for fmt in SUPPORTED_FORMATS)


def test_wrapped_fixture_object_is_unknown() -> None:
    with pytest.raises(InputFormatError, match="top-level JSON dict with keys '_source'"):
        detect_format(API_JSON / "gdc_cases_filter_submitter_id_TCGA-BH-A0EA.json")


def test_invalid_json_names_file_and_position(tmp_path: Path) -> None:
    source = PORTAL_JSON / "gdc_clinical_TCGA-CHOL_2024_51cases.json"
    cut = tmp_path / "clinical.json"
    cut.write_bytes(source.read_bytes()[:50_000])
    with pytest.raises(InputFormatError) as caught:
        read_portal_file(cut)
    message = str(caught.value)
    assert str(cut) in message and "not valid JSON" in message and "line " in message and "char " in message


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"[]", b"[ ]\n"])
def test_empty_files_are_a_known_format_without_records(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "empty.tsv"
    path.write_bytes(content)
    parsed = read_portal_file(path)
    assert parsed.format == "empty"
    assert list(parsed.records) == [] and parsed.problems == []


def test_header_only_family_history_has_its_format_and_no_records() -> None:
    parsed = read_portal_file(EXPORTS / "gdc_portal_v2_TCGA-LUAD_family_history_EMPTY.tsv")
    assert parsed.format == "family_history_tsv"
    assert list(parsed.records) == [] and parsed.problems == []


def test_compressed_download_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "clinical.tsv"
    path.write_bytes(gzip.compress((EXPORTS / "gdc_clinical_TCGA-LIHC_portal_v1_2020s.tsv").read_bytes()))
    with pytest.raises(InputFormatError, match="extract it first"):
        detect_format(path)


def test_other_biotab_tables_are_not_taken_for_the_patient_table(tmp_path: Path) -> None:
    path = tmp_path / "drug.txt"
    path.write_text("bcr_patient_uuid\tbcr_patient_barcode\tbcr_drug_uuid\tpharmaceutical_therapy_type\n")
    with pytest.raises(InputFormatError, match="'bcr_drug_uuid'"):
        detect_format(path)
