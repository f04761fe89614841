"""Identity links across GDC, IDC and PDC on real data: only explicit evidence links, and linking is idempotent."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.domain.barcodes import is_tcga_patient_barcode
from oncograph.ingest.harvest import harvest_gdc, records_from_hits
from oncograph.ingest.idc_import import import_idc
from oncograph.ingest.pdc_import import ingest_pdc
from oncograph.ingest.portal_import import import_portal_files
from oncograph.ingest.service import ingest_batch
from oncograph.lineage import ensure_release, start_run
from oncograph.linking import link_coverage, run_linking
from oncograph.sources.gdc.client import GdcClient
from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror
from oncograph.sources.pdc import PdcClient
from oncograph.sources.pdc.standin import RecordedPdc, serve_pdc

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = ["tcga_chol", "tcga_brca", "tcga_coad", "tcga_paad"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, gdc_data: Path) -> MirrorStore:
    out = tmp_path_factory.mktemp("mirror")
    build_mirror_directory(gdc_data, out)
    return MirrorStore.from_directory(out)


def _index_patients() -> set[tuple[str, str]]:
    import idc_index_data

    table = pq.read_table(idc_index_data.IDC_INDEX_PARQUET_FILEPATH, columns=["collection_id", "PatientID"])
    pairs = set(zip(table["collection_id"].to_pylist(), table["PatientID"].to_pylist(), strict=True))
    return {(c, p) for c, p in pairs if c in COLLECTIONS}


def test_links_follow_the_rules(
    factory: sessionmaker[Session], db: Session, store: MirrorStore, gdc_data: Path
) -> None:
    with serve_mirror(store) as url, GdcClient(url) as client:
        harvest_gdc(factory, client, ["TCGA-CHOL", "TCGA-BRCA", "TCGA-PAAD"])
    import_portal_files(
        factory, [gdc_data / "gdc_portal_exports" / "gdc_clinical_TCGA-COAD_portal_v2_2025_first60cases.tsv"]
    )
    # the real GDC /cases hits that carry 01BR001's GDC id (PDC declares that id for its case 01BR001)
    hits = orjson.loads(
        (gdc_data / "gdc_api_json" / "gdc_cases_sort_submitter_id_asc_size10.json").read_bytes()
    )
    with factory() as s, s.begin():
        rel = ensure_release(s, source="gdc", release="docs example")
        run = start_run(s, transform="test", parameters={})
    ingest_batch(
        factory,
        records_from_hits("cases", hits["response"]["data"]["hits"], base_url="docs"),
        release_id=rel,
        run_id=run.id,
    )
    import_idc(factory, collections=COLLECTIONS)
    with serve_pdc(RecordedPdc.from_directory(REPO / "data" / "pdc")) as url, PdcClient(url) as pdc:
        ingest_pdc(factory, pdc, studies=["PDC000111"], cases=["01BR001"])

    _, created = run_linking(factory)

    gdc = {
        (sub, proj)
        for sub, proj in db.execute(
            text(
                "SELECT p.submitter_id, pr.project_id FROM patient p JOIN project pr ON pr.id = p.project_id"
            )
        )
    }
    expected = {
        (c, p)
        for c, p in _index_patients()
        if is_tcga_patient_barcode(p) and (p, c.upper().replace("_", "-")) in gdc
    }
    linked = {
        (ns, ext)
        for ns, ext in db.execute(
            text(
                "SELECT namespace, external_id FROM identity_link WHERE commons = 'idc' AND method = 'barcode'"
            )
        )
    }
    assert linked == expected and len(expected) > 100
    assert created["idc"]["barcode"] == len(expected)
    # near-miss ids in the index (tcga_coad's trailing-letter PatientIDs) never link
    near_misses = {p for c, p in _index_patients() if c == "tcga_coad" and not is_tcga_patient_barcode(p)}
    assert near_misses and not any(ext in near_misses for _, ext in linked)

    declared = db.execute(
        text(
            "SELECT CAST(p.case_id AS text), l.evidence ->> 'case_submitter_id' FROM identity_link l "
            "JOIN patient p ON p.id = l.patient_id WHERE l.commons = 'pdc' AND l.method = 'source_declared'"
        )
    ).all()
    assert declared == [("be37f1f7-2f98-4f74-bc04-6dd2ae2afcad", "01BR001")]

    coverage = link_coverage(db)
    assert coverage["patients_gdc_idc"] == len({p for _, p in expected})
    assert coverage["idc_patients_unlinked"] == coverage["idc_patients"] - len(expected)
    assert coverage["patients_gdc_pdc"] == 1

    _, again = run_linking(factory)
    assert again == {"idc": {"barcode": 0}, "pdc": {"source_declared": 0, "barcode": 0}}
