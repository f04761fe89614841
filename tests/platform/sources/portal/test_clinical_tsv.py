"""Portal clinical TSVs (v2 dotted, v2 companions, v1 2020s, v1 2018 layout) on the real exports.

Expected values are computed here straight from the files with csv.DictReader, not taken from the parser.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oncograph.sources.gdc.portal import read_portal_file
from oncograph.sources.gdc.portal.tsv import document_rows

EXPORTS = Path(__file__).resolve().parents[4] / "data" / "gdc" / "gdc_portal_exports"
LUAD = EXPORTS / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
COAD = EXPORTS / "gdc_clinical_TCGA-COAD_portal_v2_2025_first60cases.tsv"
LIHC_V1 = EXPORTS / "gdc_clinical_TCGA-LIHC_portal_v1_2020s.tsv"
FOLLOW_UP = EXPORTS / "gdc_portal_v2_TCGA-LUAD_follow_up_first60cases.tsv"
EXPOSURE = EXPORTS / "gdc_portal_v2_TCGA-LUAD_exposure_first60cases.tsv"
PATHOLOGY = EXPORTS / "gdc_portal_v2_TCGA-LUAD_pathology_detail_first60cases.tsv"
NULL = "'--"


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def by_case(rows: list[dict[str, str]], column: str = "cases.case_id") -> dict[str, list[dict[str, str]]]:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        grouped[row[column]].append(row)
    return grouped


def walk(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
    else:
        yield value


@pytest.mark.parametrize("path", [LUAD, COAD], ids=["LUAD", "COAD"])
def test_v2_clinical_undoes_the_diagnosis_x_treatment_join(path: Path) -> None:
    rows = rows_of(path)
    expected = by_case(rows)
    parsed = read_portal_file(path)
    assert parsed.format == "clinical_tsv_v2" and parsed.problems == []
    assert [r.entity_id for r in parsed.records] == list(expected)
    for record in parsed.records:
        case_rows = expected[record.entity_id or ""]
        doc = record.document
        assert not record.problems
        assert record.source == "gdc_portal_tsv" and record.entity_type == "case"
        # the case's rows as delivered: the file's header named (stored once), each row's cells in order and
        # its line number; whole_raw puts the header back
        (header,) = record.shared
        assert record.raw["shared"] == {"columns": header.ref} and header.raw == list(case_rows[0])
        assert document_rows(record.whole_raw()) == case_rows and record.whole_raw()["columns"] == header.raw
        assert all(len(cells) == len(case_rows[0]) for cells in record.raw["rows"])
        assert record.raw["lines"] == sorted(record.raw["lines"]) and len(record.raw["lines"]) == len(
            case_rows
        )
        assert record.path == f"{path.name} > case {case_rows[0]['cases.submitter_id']}"
        assert doc["submitter_id"] == case_rows[0]["cases.submitter_id"]
        assert doc["project"] == {"project_id": case_rows[0]["project.project_id"]}
        diagnoses = doc.get("diagnoses", [])
        want_dx = {r["diagnoses.diagnosis_id"] for r in case_rows} - {NULL}
        assert sorted(d["diagnosis_id"] for d in diagnoses) == sorted(want_dx)
        want_tx = {r["treatments.treatment_id"] for r in case_rows} - {NULL}
        got_tx = [t["treatment_id"] for d in diagnoses for t in d.get("treatments", [])]
        assert sorted(got_tx) == sorted(want_tx)
        for row in case_rows:
            if NULL in (row["diagnoses.diagnosis_id"], row["treatments.treatment_id"]):
                continue
            (dx,) = (d for d in diagnoses if d["diagnosis_id"] == row["diagnoses.diagnosis_id"])
            assert row["treatments.treatment_id"] in {t["treatment_id"] for t in dx["treatments"]}
        if not want_dx:
            assert "diagnoses" not in doc
        demographic_cells = {k: v for k, v in case_rows[0].items() if k.startswith("demographic.")}
        if all(v == NULL for v in demographic_cells.values()):
            assert "demographic" not in doc
        else:
            assert isinstance(doc["demographic"], dict)
            assert doc["demographic"]["gender"] == (
                None if case_rows[0]["demographic.gender"] == NULL else case_rows[0]["demographic.gender"]
            )
        assert NULL not in set(walk(doc))


def test_luad_v2_values_and_nulls() -> None:
    records = {r.document["submitter_id"]: r.document for r in read_portal_file(LUAD).records}
    doc = records["TCGA-62-A471"]
    assert doc["case_id"] == "0075437e-ba1a-46be-86d6-9773209a2b5e"
    assert doc["primary_site"] == "Bronchus and lung"
    assert doc["days_to_lost_to_followup"] is None  # delivered as '--: present, null
    assert doc["demographic"]["days_to_birth"] == "-23689"  # kept as delivered; the mapper coerces
    # five LUAD cases (TCGA-17-Z0xx) carry only case-level columns
    bare = [d for d in records.values() if "diagnoses" not in d]
    assert len(bare) == 5 and all("demographic" not in d for d in bare)


def test_v1_2020s_one_diagnosis_and_one_treatment_per_row() -> None:
    rows = rows_of(LIHC_V1)
    expected = by_case(rows, "case_id")
    parsed = read_portal_file(LIHC_V1)
    assert parsed.format == "clinical_tsv_v1"
    assert len(parsed.records) == len(expected) == 83
    header = list(rows[0])
    treatment_columns = header[header.index("chemo_concurrent_to_radiation") :]
    for record in parsed.records:
        case_rows = expected[record.entity_id or ""]
        doc = record.document
        assert not record.problems and document_rows(record.whole_raw()) == case_rows
        assert doc["submitter_id"] == case_rows[0]["case_submitter_id"]
        assert doc["project"] == {"project_id": "TCGA-LIHC"}
        (diagnosis,) = doc["diagnoses"]
        assert diagnosis["ajcc_pathologic_stage"] == (
            None if case_rows[0]["ajcc_pathologic_stage"] == NULL else case_rows[0]["ajcc_pathologic_stage"]
        )
        assert "gender" in doc["demographic"] and "gender" not in diagnosis
        distinct = {tuple(r[c] for c in treatment_columns) for r in case_rows}
        assert len(diagnosis["treatments"]) == len(distinct)
        assert {t["treatment_type"] for t in diagnosis["treatments"]} == {
            r["treatment_type"] for r in case_rows
        }
        assert "diagnosis_id" not in diagnosis  # v1 has no child ids; none are made up
        assert NULL not in set(walk(doc))


V1_2020S_ONLY = (
    "age_at_index",
    "age_is_obfuscated",
    "country_of_residence_at_enrollment",
    "ajcc_pathologic_stage",
)


def test_v1_2018_layout_from_renamed_real_rows(tmp_path: Path) -> None:
    """No real 2018/19 clinical.tsv is bundled: this file is the real LIHC v1 rows rewritten in that layout
    (``case_submitter_id`` -> ``submitter_id``, 2020s-only columns dropped, ``--`` nulls)."""
    rows = rows_of(LIHC_V1)
    header = ["submitter_id" if c == "case_submitter_id" else c for c in rows[0] if c not in V1_2020S_ONLY]
    lines = ["\t".join(header)]
    for row in rows:
        cells = {("submitter_id" if k == "case_submitter_id" else k): v for k, v in row.items()}
        lines.append("\t".join("--" if cells[c] == NULL else cells[c] for c in header))
    path = tmp_path / "clinical.tsv"
    path.write_text("\n".join(lines) + "\n")
    parsed = read_portal_file(path)
    assert parsed.format == "clinical_tsv_v1_2018"
    reference = {r.entity_id: r.document for r in read_portal_file(LIHC_V1).records}
    assert len(parsed.records) == len(reference) == 83
    for record in parsed.records:
        assert not record.problems
        doc, ref = record.document, reference[record.entity_id]
        assert doc["submitter_id"] == ref["submitter_id"]
        (diagnosis,) = doc["diagnoses"]
        (ref_diagnosis,) = ref["diagnoses"]
        assert "tumor_stage" in diagnosis and "ajcc_pathologic_stage" not in diagnosis
        assert diagnosis == {k: v for k, v in ref_diagnosis.items() if k not in V1_2020S_ONLY}
        assert doc["demographic"] == {k: v for k, v in ref["demographic"].items() if k not in V1_2020S_ONLY}
        assert "--" not in set(walk(doc))


def test_follow_ups_with_nested_tests_and_attributes() -> None:
    rows = rows_of(FOLLOW_UP)
    expected = by_case(rows)
    parsed = read_portal_file(FOLLOW_UP)
    assert parsed.format == "follow_up_tsv"
    assert len(parsed.records) == len(expected) == 55
    for record in parsed.records:
        case_rows = expected[record.entity_id or ""]
        doc = record.document
        assert set(doc) == {"case_id", "submitter_id", "project", "follow_ups"}
        follow_ups = doc["follow_ups"]
        assert len(follow_ups) == len({r["follow_ups.follow_up_id"] for r in case_rows})
        for kind, column in (
            ("molecular_tests", "molecular_tests.molecular_test_id"),
            ("other_clinical_attributes", "other_clinical_attributes.other_clinical_attribute_id"),
        ):
            pairs = {(r["follow_ups.follow_up_id"], r[column]) for r in case_rows if r[column] != NULL}
            got = {(f["follow_up_id"], c[column.split(".")[1]]) for f in follow_ups for c in f.get(kind, [])}
            assert got == pairs


def test_exposures_without_ids_one_per_case() -> None:
    rows = rows_of(EXPOSURE)
    parsed = read_portal_file(EXPOSURE)
    assert len(parsed.records) == len(by_case(rows)) == 55
    for record in parsed.records:
        (exposure,) = record.document["exposures"]
        assert exposure["exposure_id"] is None  # all null in this export; the content is the key
        assert "diagnoses" not in record.document


def test_pathology_details_nest_under_their_diagnosis() -> None:
    rows = rows_of(PATHOLOGY)
    parsed = read_portal_file(PATHOLOGY)
    assert len(parsed.records) == 55
    by_id = {r.entity_id: r.document for r in parsed.records}
    for row in rows:
        (diagnosis,) = by_id[row["cases.case_id"]]["diagnoses"]
        assert diagnosis["diagnosis_id"] == row["diagnoses.diagnosis_id"]
        assert diagnosis["submitter_id"] == row["diagnoses.submitter_id"]
        (detail,) = diagnosis["pathology_details"]
        assert detail["pathology_detail_id"] == row["pathology_details.pathology_detail_id"]


def test_v1_short_exposure_file_matches_the_v2_one(tmp_path: Path) -> None:
    """A v1-style exposure.tsv (short headers), written from the real v2 exposure rows."""
    rows = rows_of(EXPOSURE)
    rename = {
        "cases.case_id": "case_id",
        "cases.submitter_id": "case_submitter_id",
        "project.project_id": "project_id",
    }
    header = [rename.get(c, c.split(".", 1)[1]) for c in rows[0] if c != "exposures.submitter_id"]
    columns = [c for c in rows[0] if c != "exposures.submitter_id"]
    path = tmp_path / "exposure.tsv"
    path.write_text("\n".join(["\t".join(header), *("\t".join(r[c] for c in columns) for r in rows)]) + "\n")
    parsed = read_portal_file(path)
    assert parsed.format == "exposure_tsv"
    reference = read_portal_file(EXPOSURE).records
    for record, ref in zip(parsed.records, reference, strict=True):
        (exposure,) = record.document["exposures"]
        (ref_exposure,) = ref.document["exposures"]
        assert exposure == {k: v for k, v in ref_exposure.items() if k != "submitter_id"}


def test_case_records_are_built_when_read_and_the_same_each_time() -> None:
    records = read_portal_file(LUAD).records
    expected = list(by_case(rows_of(LUAD)))
    assert len(records) == len(expected) == 60
    built = list(records)
    assert built == list(records) and [r.entity_id for r in built] == expected
    assert records[3] == built[3] and records[-1] == built[-1] and records[10:13] == built[10:13]
    assert built[0].shared[0] is built[59].shared[0]  # one header for the file
