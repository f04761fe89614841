"""Ingestion service against real PostgreSQL with real GDC documents."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.documents import unpack
from oncograph.domain import SourceRecord
from oncograph.ingest.service import ingest_batch
from oncograph.lineage import ensure_release, lineage_of, start_run

DATA = Path(__file__).resolve().parents[3] / "data" / "gdc"


def _gbm_case() -> dict[str, Any]:
    path = DATA / "gdc_api_json" / "gdc_case_TCGA-06-1802_expand_diagnoses_2025_multi_diagnosis.json"
    return dict(orjson.loads(path.read_bytes())["response_hit"])


def _record(doc: dict[str, Any]) -> SourceRecord:
    return SourceRecord("gdc_api", "case", doc.get("case_id"), doc, doc, f"case {doc.get('submitter_id')}")


def _setup(factory: sessionmaker[Session], release: str = "Data Release 45.0") -> tuple[int, int]:
    with factory() as s, s.begin():
        rel = ensure_release(s, source="gdc", release=release)
        run = start_run(s, transform="test", parameters={})
    return rel, run.id


def test_case_lands_once_and_reharvest_is_noop(factory: sessionmaker[Session], db: Session) -> None:
    doc = _gbm_case()
    rel, run = _setup(factory)
    first = ingest_batch(factory, [_record(doc)], release_id=rel, run_id=run)
    assert first.entities()["patient"] == {"inserted": 1, "updated": 0, "unchanged": 0, "quarantined": 0}
    assert first.entities()["diagnosis"]["inserted"] == len(doc["diagnoses"]) == 3
    second = ingest_batch(factory, [_record(copy.deepcopy(doc))], release_id=rel, run_id=run)
    for kind, c in second.entities().items():
        assert c["inserted"] == 0 and c["updated"] == 0, kind
    assert second.documents_new == 0
    n = db.execute(
        text(
            "SELECT count(*) FROM diagnosis d JOIN patient p ON p.id = d.patient_id "
            "WHERE p.submitter_id = 'TCGA-06-1802'"
        )
    ).scalar_one()
    assert n == 3


def test_changed_document_in_new_release_updates_and_keeps_old_version(
    factory: sessionmaker[Session], db: Session
) -> None:
    doc = _gbm_case()
    rel1, run = _setup(factory, "Data Release 45.0")
    ingest_batch(factory, [_record(doc)], release_id=rel1, run_id=run)
    changed = copy.deepcopy(doc)
    changed["diagnoses"][0]["age_at_diagnosis"] = 12345
    rel2, run2 = _setup(factory, "Data Release 46.0")
    result = ingest_batch(factory, [_record(changed)], release_id=rel2, run_id=run2)
    assert result.entities()["diagnosis"]["updated"] == 1
    assert result.entities()["patient"] == {"inserted": 0, "updated": 0, "unchanged": 1, "quarantined": 0}
    lineage = lineage_of(db, doc["case_id"])
    assert [r["last_seen"] for r in lineage["records"]] == ["Data Release 46.0"]
    assert [r["first_seen"] for r in lineage["records"]] == ["Data Release 45.0"]
    assert len(lineage["documents"]) == 2
    age = db.execute(
        text("SELECT age_at_diagnosis FROM diagnosis WHERE diagnosis_id = :d"),
        {"d": doc["diagnoses"][0]["diagnosis_id"]},
    ).scalar_one()
    assert age == 12345


def test_bad_value_is_quarantined_and_good_records_land(factory: sessionmaker[Session], db: Session) -> None:
    good = _gbm_case()
    bad = copy.deepcopy(good)
    bad["case_id"] = "11111111-2222-3333-4444-555555555555"
    bad["submitter_id"] = "TCGA-XX-BAD1"
    bad["diagnoses"][1]["age_at_diagnosis"] = "sixty"
    rel, run = _setup(factory)
    result = ingest_batch(factory, [_record(good), _record(bad)], release_id=rel, run_id=run)
    assert result.quarantined == {"patient": 1}
    assert "case TCGA-XX-BAD1 > diagnosis 2 > age_at_diagnosis" in str(result.problems[0])
    reasons = db.execute(text("SELECT reasons FROM quarantine WHERE run_id = :r"), {"r": run}).scalar_one()
    assert "sixty" in reasons[0]
    assert (
        db.execute(text("SELECT count(*) FROM patient WHERE submitter_id = 'TCGA-XX-BAD1'")).scalar_one() == 0
    )
    assert (
        db.execute(text("SELECT count(*) FROM patient WHERE submitter_id = 'TCGA-06-1802'")).scalar_one() == 1
    )


def test_the_same_document_twice_in_a_batch_is_one_version_and_its_rows_point_to_it(
    factory: sessionmaker[Session], db: Session
) -> None:
    doc = _gbm_case()
    changed = copy.deepcopy(doc)
    changed["diagnoses"][0]["primary_diagnosis"] = "Glioblastoma (changed)"
    rel, run = _setup(factory)
    # the record, a copy of it (one version) and a changed version: the later record's values win
    counts = ingest_batch(
        factory, [_record(doc), _record(copy.deepcopy(doc)), _record(changed)], release_id=rel, run_id=run
    )
    assert counts.documents_new == 2
    versions = db.execute(
        text("SELECT id, raw_zstd FROM source_document WHERE entity_id = :c ORDER BY id"),
        {"c": doc["case_id"]},
    ).all()
    assert [unpack(raw) for _, raw in versions] == [doc, changed]
    pointed = (
        db.execute(
            text(
                "SELECT DISTINCT d.source_document_id FROM diagnosis d JOIN patient p ON p.id = d.patient_id "
                "WHERE p.case_id = CAST(:c AS uuid)"
            ),
            {"c": doc["case_id"]},
        )
        .scalars()
        .all()
    )
    assert pointed == [versions[1][0]]
    again = ingest_batch(factory, [_record(copy.deepcopy(changed))], release_id=rel, run_id=run)
    assert again.documents_new == 0


def _hit(name: str, *at: str | int) -> dict[str, Any]:
    value: Any = orjson.loads((DATA / "gdc_api_json" / name).read_bytes())["response"]
    for key in at:
        value = value[key]
    return dict(value)


def test_a_record_the_database_refuses_is_quarantined_and_the_rest_lands(
    factory: sessionmaker[Session], db: Session
) -> None:
    """A value the mapping accepts but PostgreSQL refuses (a whole number past the integer range, as a
    corrupted cell gives) quarantines its record alone, with the database's reason; the other records of the
    batch land in the same transaction (the refused savepoint is rolled back and split in halves until the
    refused record is alone)."""
    gbm = _gbm_case()
    brca = _hit("gdc_case_by_uuid_expand_diagnoses_TCGA-BH-A0EA.json", "data")
    hcmi = _hit("gdc_cases_HCMI_filter_classification_metastasis_expand_diagnoses.json", "data", "hits", 0)
    hcmi["diagnoses"][0]["age_at_diagnosis"] = 10**12  # integer column: out of range
    records = [
        _record(gbm),
        SourceRecord("gdc_api", "case", hcmi["id"], hcmi, hcmi, "case HCMI"),
        _record(brca),
    ]
    rel, run = _setup(factory)

    counts = ingest_batch(factory, records, release_id=rel, run_id=run)

    assert counts.quarantined == {"patient": 1}
    assert counts.entities()["patient"]["inserted"] == 2
    (problem,) = counts.problems
    assert problem.path == "case HCMI" and "the database refused the record" in problem.message
    assert "out of range" in problem.message
    stored = db.execute(text("SELECT CAST(case_id AS text) FROM patient ORDER BY 1")).scalars().all()
    assert stored == sorted([gbm["case_id"], brca["case_id"]])
    diagnoses = db.execute(
        text("SELECT count(*) FROM diagnosis d JOIN patient p ON p.id = d.patient_id")
    ).scalar_one()
    assert diagnoses == len(gbm["diagnoses"]) + len(brca["diagnoses"])
    entry = db.execute(text("SELECT entity_id, reasons FROM quarantine WHERE run_id = :r"), {"r": run}).one()
    assert entry.entity_id == hcmi["id"] and "out of range" in entry.reasons[0]
    # every stored row points at its own record's document, the refused one's was never stored
    docs = db.execute(text("SELECT entity_id FROM source_document WHERE run_id = :r ORDER BY 1"), {"r": run})
    assert docs.scalars().all() == sorted([gbm["case_id"], brca["case_id"]])
