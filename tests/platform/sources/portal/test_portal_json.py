"""Portal JSON downloads (clinical, biospecimen, cases/files tables, file metadata) and saved API hits."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from oncograph.sources.gdc.portal import read_portal_file

GDC = Path(__file__).resolve().parents[4] / "data" / "gdc"
PORTAL_JSON = GDC / "gdc_portal_json"
EXPORTS = GDC / "gdc_portal_exports"
BRCA_2019 = PORTAL_JSON / "gdc_clinical_TCGA-BRCA_2019_1036cases_tumor_stage.json"
CHOL_CLINICAL = PORTAL_JSON / "gdc_clinical_TCGA-CHOL_2024_51cases.json"
CHOL_BIOSPECIMEN = PORTAL_JSON / "gdc_biospecimen_TCGA-CHOL_2024_51cases.json"


def load(path: Path) -> list[Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, list)
    return data


def test_brca_2019_clinical_with_tumor_stage_and_derived_submitter_id() -> None:
    elements = load(BRCA_2019)
    parsed = read_portal_file(BRCA_2019)
    assert parsed.format == "portal_clinical_json" and parsed.problems == []
    assert len(parsed.records) == 1036
    for record, element in zip(parsed.records, elements, strict=True):
        doc = record.document
        assert not record.problems and record.raw == element
        assert record.entity_id == element["case_id"]
        assert "submitter_id" not in element and "project" not in doc
        barcode = element["demographic"]["submitter_id"].removesuffix("_demographic")
        assert doc["submitter_id"] == barcode
        assert doc["_derived"] == {"submitter_id": "demographic.submitter_id"}
        assert record.path == f"{BRCA_2019.name} > case {barcode}"
        assert all("tumor_stage" in d for d in doc["diagnoses"])


def test_brca_2019_parse_is_not_quadratic() -> None:
    # a generous sanity bound, not a performance target (those live in bench/): a quadratic parse of these
    # 1,036 cases once took minutes; a linear one takes a fraction of a second even on a loaded CI machine
    start = time.perf_counter()
    read_portal_file(BRCA_2019)
    assert time.perf_counter() - start < 15.0


def test_derivation_needs_a_barcode_like_demographic_id(tmp_path: Path) -> None:
    elements = load(BRCA_2019)[:3]
    elements[0]["demographic"]["submitter_id"] = "weird id_demographic"
    elements[1]["demographic"]["submitter_id"] = "TCGA-D8-A1JB-demo"
    path = tmp_path / "clinical.json"
    path.write_text(json.dumps(elements))
    first, second, third = read_portal_file(path).records
    assert "submitter_id" not in first.document and "_derived" not in first.document
    assert "submitter_id" not in second.document
    assert (
        third.document["submitter_id"] == elements[2]["demographic"]["submitter_id"][: -len("_demographic")]
    )
    assert not first.problems  # the case_id is enough to key it


def test_chol_clinical_keeps_documents_as_delivered() -> None:
    elements = load(CHOL_CLINICAL)
    parsed = read_portal_file(CHOL_CLINICAL)
    assert [r.document for r in parsed.records] == elements
    assert all(not r.problems for r in parsed.records)
    assert sum(1 for r in parsed.records if "diagnoses" not in r.document) == 3


def test_documents_and_raw_are_independent() -> None:
    record = read_portal_file(CHOL_CLINICAL).records[0]
    record.document["demographic"]["gender"] = "changed"
    assert record.raw["demographic"]["gender"] != "changed"


def test_chol_biospecimen_tree_counts() -> None:
    parsed = read_portal_file(CHOL_BIOSPECIMEN)
    assert parsed.format == "portal_biospecimen_json" and len(parsed.records) == 51
    samples = [s for r in parsed.records for s in r.document["samples"]]
    portions = [p for s in samples for p in s.get("portions", [])]
    analytes = [a for p in portions for a in p.get("analytes", [])]
    aliquots = [q for a in analytes for q in a.get("aliquots", [])]
    slides = [s for p in portions for s in p.get("slides", [])]
    # SOURCES.md says "154 samples, 154 portions, 223 analytes, 438 aliquots, 114 slides"; counted in the file,
    # 154 samples all have portions, and there are 223 portions (100 with "analytes": []) and 168 analytes.
    assert (len(samples), len(portions), len(analytes), len(aliquots), len(slides)) == (
        154,
        223,
        168,
        438,
        114,
    )
    assert sum(1 for s in samples if s.get("portions")) == 154
    assert sum(1 for p in portions if p.get("analytes") == []) == 100
    assert {r.entity_id for r in parsed.records} == {
        r.entity_id for r in read_portal_file(CHOL_CLINICAL).records
    }


@pytest.mark.parametrize(
    ("name", "count", "with_case_id"),
    [
        ("gdc_cases_table_TCGA-PAAD_2022_185cases.json", 185, True),
        ("gdc_cases_table_TCGA-LIHC_2019_375cases.json", 375, False),
    ],
)
def test_cases_tables(name: str, count: int, with_case_id: bool) -> None:
    parsed = read_portal_file(PORTAL_JSON / name)
    assert parsed.format == "portal_cases_table_json" and len(parsed.records) == count
    assert all(not r.problems and r.document["submitter_id"] for r in parsed.records)
    assert all((r.entity_id is not None) == with_case_id for r in parsed.records)


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("gdc_files_table_TCGA-CHOL_htseq_2016_45files.json", 45),
        ("gdc_files_table_TCGA-BRCA_htseq_2019_1164files.json", 1164),
    ],
)
def test_files_tables_without_file_id_are_quarantined(name: str, count: int) -> None:
    parsed = read_portal_file(PORTAL_JSON / name)
    assert parsed.format == "portal_files_table_json" and len(parsed.records) == count
    assert all(r.problems == ("missing file_id",) and r.entity_id is None for r in parsed.records)
    assert any("no record has a file_id" in p.message for p in parsed.problems)


def test_files_table_2018_with_file_id() -> None:
    parsed = read_portal_file(PORTAL_JSON / "gdc_files_table_TCGA-LIHC_miRNA_2018_425files.json")
    assert len(parsed.records) == 425 and all(not r.problems for r in parsed.records)
    case_ids = {c["case_id"] for r in parsed.records for c in r.document["cases"]}
    assert len(case_ids) == 373


@pytest.mark.parametrize(
    ("path", "files", "cases"),
    [
        (PORTAL_JSON / "gdc_metadata_cart_TCGA-LIHC_CNV_2018_1692files.json", 1692, 409),
        (PORTAL_JSON / "gdc_metadata_repository_TCGA-BRCA_STAR_counts_2025_692files.json", 692, 692),
        (EXPORTS / "gdc_portal_v2_metadata.cart_TCGA-LUAD_STAR_counts_50files.json", 50, None),
    ],
)
def test_file_metadata_links_cases_through_associated_entities(
    path: Path, files: int, cases: int | None
) -> None:
    elements = load(path)
    parsed = read_portal_file(path)
    assert parsed.format == "portal_file_metadata_json" and len(parsed.records) == files
    for record, element in zip(parsed.records, elements, strict=True):
        doc = record.document
        assert not record.problems and record.entity_id == element["file_id"]
        assert doc["associated_entities"] == element["associated_entities"]
        assert doc["_derived"] == {"cases": "associated_entities"}
        want = {
            (e["case_id"], e["entity_id"], e["entity_submitter_id"]) for e in element["associated_entities"]
        }
        got = {
            (c["case_id"], a["aliquot_id"], a["submitter_id"]) for c in doc["cases"] for a in c["aliquots"]
        }
        assert got == want
    if cases is not None:
        assert len({c["case_id"] for r in parsed.records for c in r.document["cases"]}) == cases


def test_api_hits() -> None:
    cases = read_portal_file(PORTAL_JSON / "gdc_api_cases_TCGA-BRCA_2026_50cases_few_fields.json")
    assert cases.format == "api_hits_json" and len(cases.records) == 50
    assert all(r.entity_type == "case" and r.entity_id == r.document["id"] for r in cases.records)
    slides = read_portal_file(PORTAL_JSON / "gdc_api_files_slides_TCGA-BL-A0C8_BLCA_2025_6files.json")
    assert [r.entity_type for r in slides.records] == ["file"] * 6
    assert all(r.document["cases"] == [{"submitter_id": "TCGA-BL-A0C8"}] for r in slides.records)


def test_broken_elements_get_problems_and_the_rest_is_fine(tmp_path: Path) -> None:
    elements = load(CHOL_CLINICAL)
    broken = [*elements[:2], 42, {"demographic": {"gender": "male"}}, {"case_id": "x", "diagnoses": {"a": 1}}]
    path = tmp_path / "clinical.json"
    path.write_text(json.dumps([*broken, *elements[2:]]))
    parsed = read_portal_file(path)
    assert len(parsed.records) == len(elements) + 3
    problems = [r.problems for r in parsed.records]
    assert problems[2] == ("element 2 is a JSON number, not an object",)
    assert problems[3] == ("missing case_id and submitter_id",)
    assert problems[4] == ("diagnoses is a JSON object, expected a list",)
    assert parsed.records[2].raw == 42 and parsed.records[2].path == "clinical.json > element 2"
    assert parsed.records[3].raw == broken[3] and parsed.records[3].entity_id is None
    assert all(not p for i, p in enumerate(problems) if i not in (2, 3, 4))
