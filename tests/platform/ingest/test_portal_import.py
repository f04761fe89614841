"""Importing real GDC portal downloads into a real PostgreSQL: counts, idempotence, bad input."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.documents import unpack
from oncograph.errors import InputFormatError
from oncograph.ingest.portal_import import import_portal_files
from oncograph.lineage import whole_document
from oncograph.sources.gdc.portal.tsv import document_rows

NULLS = {"'--", "--", ""}


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _distinct_per_case(rows: list[dict[str, str]], column: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        out[r["cases.case_id"]]
        if r[column] not in NULLS:
            out[r["cases.case_id"]].add(r[column])
    return out


def _per_patient(db: Session, table: str) -> dict[str, int]:
    sql = (
        f"SELECT CAST(p.case_id AS text), count(c.id) FROM patient p LEFT JOIN {table} c "
        "ON c.patient_id = p.id GROUP BY p.case_id"
    )
    return {cid: n for cid, n in db.execute(text(sql))}


def test_luad_2025_cart_matches_the_files(
    gdc_data: Path, factory: sessionmaker[Session], db: Session
) -> None:
    exports = gdc_data / "gdc_portal_exports"
    names = ["clinical", "exposure", "follow_up", "pathology_detail"]
    files = [exports / f"gdc_portal_v2_TCGA-LUAD_{n}_first60cases.tsv" for n in names]
    run, counts, _ = import_portal_files(factory, files)

    clinical = _tsv(files[0])
    case_ids = {r["cases.case_id"] for r in clinical}
    assert db.execute(text("SELECT count(*) FROM patient")).scalar_one() == len(case_ids) == 60
    assert counts.entities()["patient"]["inserted"] == 60

    expected_dx = _distinct_per_case(clinical, "diagnoses.diagnosis_id")
    expected_tx = _distinct_per_case(clinical, "treatments.treatment_id")
    expected_fu = _distinct_per_case(_tsv(files[2]), "follow_ups.follow_up_id")
    expected_pd = _distinct_per_case(_tsv(files[3]), "pathology_details.pathology_detail_id")
    assert _per_patient(db, "diagnosis") == {c: len(expected_dx[c]) for c in case_ids}
    assert _per_patient(db, "treatment") == {c: len(expected_tx[c]) for c in case_ids}
    assert {c: n for c, n in _per_patient(db, "follow_up").items() if n} == {
        c: len(v) for c, v in expected_fu.items() if v
    }
    assert sum(_per_patient(db, "pathology_detail").values()) == sum(len(v) for v in expected_pd.values())
    # 55 exposure rows, none with an id: one exposure per row, keys derived
    assert db.execute(text("SELECT count(*), bool_and(key_derived) FROM exposure")).one() == (55, True)

    again_run, again, _ = import_portal_files(factory, files)
    for kind, c in again.entities().items():
        assert (c["inserted"], c["updated"]) == (0, 0), kind
    assert again_run.id != run.id


def test_api_tsv_and_json_are_one_patient(
    gdc_data: Path, factory: sessionmaker[Session], db: Session
) -> None:
    # TCGA-BH-A0EA arrives in the biotab supplement, the 2019 BRCA clinical JSON and the 2026 API dump
    exports, pjson = gdc_data / "gdc_portal_exports", gdc_data / "gdc_portal_json"
    import_portal_files(
        factory,
        [
            pjson / "gdc_clinical_TCGA-BRCA_2019_1036cases_tumor_stage.json",
            exports / "gdc_clinical_supplement_BCR_Biotab_clinical_patient_brca_first100_plus3linked.txt",
            pjson / "gdc_api_cases_TCGA-BRCA_2026_50cases_few_fields.json",
        ],
    )
    rows = db.execute(text("SELECT count(*) FROM patient WHERE submitter_id = 'TCGA-BH-A0EA'")).scalar_one()
    assert rows == 1
    docs = db.execute(
        text(
            "SELECT array_agg(DISTINCT d.source ORDER BY d.source) FROM source_document d JOIN patient p "
            "ON d.entity_id = CAST(p.case_id AS text) WHERE p.submitter_id = 'TCGA-BH-A0EA'"
        )
    ).scalar_one()
    assert docs == ["gdc_biotab", "gdc_portal_json"]
    stage = db.execute(
        text(
            "SELECT d.stage, d.tumor_stage FROM diagnosis d JOIN patient p ON p.id = d.patient_id "
            "WHERE p.submitter_id = 'TCGA-A2-A3XX' AND d.tumor_stage IS NOT NULL"
        )
    ).one()
    assert stage[0] == stage[1].replace("stage ", "Stage ").upper().replace("STAGE", "Stage")


def test_truncated_tsv_quarantines_the_cut_case_and_keeps_the_rest(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    source = gdc_data / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
    content = source.read_bytes()
    cut = tmp_path / "clinical_truncated.tsv"
    cut.write_bytes(content[: int(len(content) * 0.6)])
    # earlier data that must stay intact
    import_portal_files(
        factory, [gdc_data / "gdc_portal_exports" / "gdc_clinical_TCGA-LIHC_portal_v1_2020s.tsv"]
    )
    before = db.execute(text("SELECT count(*) FROM patient")).scalar_one()
    run, counts, _ = import_portal_files(factory, [cut])
    assert counts.quarantined == {"patient": 1}
    reason, location = db.execute(
        text("SELECT reasons ->> 0, location FROM quarantine WHERE run_id = :r"), {"r": run.id}
    ).one()
    assert "clinical_truncated.tsv" in location and "line" in reason
    complete = len({r["cases.case_id"] for r in _tsv(cut)}) - 1
    after = db.execute(text("SELECT count(*) FROM patient")).scalar_one()
    assert after == before + complete


def test_stored_documents_give_back_every_row_of_the_file_with_the_header_stored_once(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    source = gdc_data / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
    # the same header in a second file (the first 20 cases): its documents name the one stored header
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    first_cases = {r["cases.case_id"] for r in _tsv(source)[:20]}
    part = tmp_path / "clinical_part.tsv"
    part.write_text(
        lines[0] + "".join(line for line in lines[1:] if line.split("\t")[1] in first_cases), "utf-8"
    )
    kept = part.read_text("utf-8").splitlines(keepends=True)
    assert kept == lines[: len(kept)]  # the same cases on the same lines: the same case documents
    _, counts, _ = import_portal_files(factory, [source], batch_size=7)
    _, again, _ = import_portal_files(factory, [part])

    headers = db.execute(
        text("SELECT raw_zstd, location FROM source_document WHERE entity_type = 'tsv_header'")
    ).all()
    assert [(unpack(raw), where) for raw, where in headers] == [
        (lines[0].rstrip("\n").split("\t"), source.name)
    ]
    assert counts.documents_new == 60 + 1  # the cases and the header, once for 9 batches
    expected: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in _tsv(source):
        expected[row["cases.case_id"]].append(row)
    docs = db.execute(
        text(
            "SELECT CAST(p.case_id AS text), d.id FROM patient p JOIN source_document d "
            "ON d.source = 'gdc_portal_tsv' AND d.entity_type = 'case' AND d.entity_id = CAST(p.case_id AS text)"
        )
    ).all()
    assert len(docs) == 60 and again.documents_new == 0 and again.records == len(first_cases)
    for case_id, doc_id in docs:
        assert document_rows(whole_document(db, doc_id)) == expected[case_id]


def test_a_quarantined_tsv_case_keeps_its_header_in_place(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    source = gdc_data / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_clinical_first60cases.tsv"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "clinical_cut.tsv"
    cut.write_text(lines[0] + lines[1] + lines[2].split("\t", 30)[-1], "utf-8")  # line 3 is cut short
    run, counts, _ = import_portal_files(factory, [cut])
    assert sum(counts.quarantined.values()) >= 1
    raws = db.execute(text("SELECT raw FROM quarantine WHERE run_id = :r"), {"r": run.id}).scalars().all()
    header = lines[0].rstrip("\n").split("\t")
    assert raws and all(raw["columns"] == header and "shared" not in raw for raw in raws)
    assert any(3 in raw["lines"] for raw in raws)


def test_unknown_layout_is_a_clear_error_and_writes_nothing(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    weird = tmp_path / "weird.tsv"
    weird.write_text("colour\tshape\nred\tround\n")
    good = gdc_data / "gdc_portal_exports" / "gdc_portal_v2_TCGA-LUAD_exposure_first60cases.tsv"
    with pytest.raises(InputFormatError) as err:
        import_portal_files(factory, [good, weird])
    assert "weird.tsv" in str(err.value) and "colour" in str(err.value)
    assert db.execute(text("SELECT count(*) FROM patient")).scalar_one() == 0


def test_broken_hit_and_missing_id_are_quarantined(
    gdc_data: Path, tmp_path: Path, factory: sessionmaker[Session], db: Session
) -> None:
    hits = orjson.loads(
        (gdc_data / "gdc_portal_json" / "gdc_api_cases_TCGA-BRCA_2026_50cases_few_fields.json").read_bytes()
    )
    no_id = {k: v for k, v in hits[1].items() if k not in ("id", "case_id", "submitter_id")}
    page = [hits[0], "not-an-object", no_id, *hits[3:10]]
    path = tmp_path / "page.json"
    path.write_bytes(orjson.dumps(page))
    run, counts, _ = import_portal_files(factory, [path])
    assert counts.quarantined == {"patient": 2}
    assert counts.entities()["patient"]["inserted"] == 8
    reasons = [
        r
        for (r,) in db.execute(
            text("SELECT reasons ->> 0 FROM quarantine WHERE run_id = :r ORDER BY id"), {"r": run.id}
        )
    ]
    assert len(reasons) == 2 and all(reasons)
