"""Harvest through the real HTTP client from the local GDC-compatible server into real PostgreSQL."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from support.graph import snapshot

from oncograph.ingest.harvest import harvest_gdc
from oncograph.lineage import lineage_of
from oncograph.sources.gdc.client import GdcClient
from oncograph.sources.gdc.mirror import (
    FaultConfig,
    FaultInjector,
    MirrorStore,
    build_mirror_directory,
    serve_mirror,
)

PROJECTS = ["TCGA-CHOL", "TCGA-GBM", "TCGA-BRCA"]


@pytest.fixture(scope="module")
def mirror_dir(tmp_path_factory: pytest.TempPathFactory, gdc_data: Path) -> Path:
    out = tmp_path_factory.mktemp("mirror")
    build_mirror_directory(gdc_data, out)
    return out


@pytest.fixture(scope="module")
def store(mirror_dir: Path) -> MirrorStore:
    return MirrorStore.from_directory(mirror_dir)


def _client(url: str) -> GdcClient:
    return GdcClient(url, page_size=97, backoff_base_s=0.001, backoff_max_s=0.05, max_attempts=40)


def _harvest(factory: sessionmaker[Session], store: MirrorStore, faults: FaultConfig | None = None) -> Any:
    injector = FaultInjector(faults)
    with serve_mirror(store, faults=injector) as url, _client(url) as client:
        harvest, counts = harvest_gdc(factory, client, PROJECTS)
    return harvest, counts, injector, client


def _expected_cases(store: MirrorStore) -> set[str]:
    return {
        str(d["case_id"])
        for d in store.documents("cases")
        if isinstance(d.get("project"), dict) and d["project"].get("project_id") in PROJECTS
    }


def test_harvest_lands_every_case_and_reharvest_is_a_noop(
    factory: sessionmaker[Session], db: Session, store: MirrorStore
) -> None:
    harvest, counts, _, _ = _harvest(factory, store)
    cases = _expected_cases(store)
    assert len(cases) > 1000
    stored = {str(c) for (c,) in db.execute(text("SELECT case_id FROM patient"))}
    assert stored == cases
    assert counts.entities()["patient"]["inserted"] == len(cases)
    run = db.execute(
        text("SELECT status, source_release_id IS NOT NULL, counts FROM run WHERE id = :i"),
        {"i": harvest.run.id},
    ).one()
    assert run[0] == "succeeded" and run[1]
    assert harvest.release == "Data Release 45.0 - December 04, 2025"

    _, again, _, _ = _harvest(factory, store)
    for kind, c in again.entities().items():
        assert (c["inserted"], c["updated"]) == (0, 0), kind
    assert again.documents_new == 0


def test_faults_do_not_change_the_graph(
    store: MirrorStore, fresh_db_url: str, pg_server_url: str, template_url: str, tmp_path: Path
) -> None:
    from sqlalchemy import create_engine
    from support.db import clone_database

    clean_url = fresh_db_url
    faulty_url = clone_database(pg_server_url, template_url, f"{Path(fresh_db_url).name}_faulty_test")
    snaps = []
    for url, faults in (
        (clean_url, None),
        (faulty_url, FaultConfig(fail_rate=0.2, rate_limit=3, rate_burst=1, truncate_rate=0.05, seed=3)),
    ):
        engine = create_engine(url)
        factory = sessionmaker(bind=engine)
        _, _, injector, client = _harvest(factory, store, faults)
        if faults is not None:
            assert client.retries > 0
            assert (
                injector.counters.errors > 0
                and injector.counters.truncated > 0
                and injector.counters.rate_limited > 0
            )
        with engine.connect() as conn:
            snaps.append(snapshot(conn))
        engine.dispose()
    assert snaps[0] == snaps[1]
    assert len(snaps[0]["patient"]) > 1000


def test_changed_document_in_new_release(
    factory: sessionmaker[Session], db: Session, store: MirrorStore
) -> None:
    _harvest(factory, store)
    docs = [copy.deepcopy(d) for d in store.documents("cases")]
    target = next(
        d for d in docs if (d.get("project") or {}).get("project_id") == "TCGA-CHOL" and d.get("diagnoses")
    )
    target["diagnoses"][0]["days_to_last_follow_up"] = 999
    changed = MirrorStore.from_documents(
        cases=docs,
        files=store.documents("files"),
        projects=store.documents("projects"),
        status={**store.status, "data_release": "Data Release 46.0 - August 10, 2026"},
    )
    _, counts, _, _ = _harvest(factory, changed)
    assert counts.entities()["diagnosis"]["updated"] == 1
    assert counts.entities()["patient"]["updated"] == 0
    info = lineage_of(db, target["case_id"])
    patient = next(r for r in info["records"] if r["kind"] == "patient")
    assert patient["first_seen"].startswith("Data Release 45.0")
    assert patient["last_seen"].startswith("Data Release 46.0")
    assert len([d for d in info["documents"] if d["source"] == "gdc_api"]) == 2
    value = db.execute(
        text("SELECT days_to_last_follow_up FROM diagnosis WHERE diagnosis_id = :d"),
        {"d": target["diagnoses"][0]["diagnosis_id"]},
    ).scalar_one()
    assert value == 999


def test_broken_hits_in_an_api_page_are_quarantined(
    factory: sessionmaker[Session], db: Session, store: MirrorStore
) -> None:
    from oncograph.ingest.harvest import records_from_hits
    from oncograph.ingest.service import ingest_batch
    from oncograph.lineage import ensure_release, start_run

    good = next(
        d for d in store.documents("cases") if (d.get("project") or {}).get("project_id") == "TCGA-CHOL"
    )
    missing_id = {k: v for k, v in good.items() if k not in ("case_id", "id", "submitter_id")}
    records = records_from_hits("cases", [good, "oops", missing_id], base_url="http://gdc", start=200)
    with factory() as s, s.begin():
        rel = ensure_release(s, source="gdc", release="test")
        run = start_run(s, transform="test", parameters={})
    counts = ingest_batch(factory, records, release_id=rel, run_id=run.id)
    assert counts.entities()["patient"] == {"inserted": 1, "updated": 0, "unchanged": 0, "quarantined": 2}
    rows = db.execute(
        text("SELECT location, reasons ->> 0 FROM quarantine WHERE run_id = :r ORDER BY id"), {"r": run.id}
    ).all()
    assert rows[0][0] == "http://gdc/cases > hit 201" and "expected a JSON object" in rows[0][1]
    assert "neither case_id nor submitter_id" in rows[1][1]


def _release(store: MirrorStore, label: str, cases: list[dict[str, Any]]) -> MirrorStore:
    return MirrorStore.from_documents(
        cases=cases,
        files=store.documents("files"),
        projects=store.documents("projects"),
        status={**store.status, "data_release": label},
    )


def test_disappeared_case_is_retired_and_comes_back(
    factory: sessionmaker[Session], db: Session, store: MirrorStore
) -> None:
    _harvest(factory, store)
    docs = store.documents("cases")
    gone = next(
        d for d in docs if (d.get("project") or {}).get("project_id") == "TCGA-CHOL" and d.get("diagnoses")
    )
    without = _release(store, "Data Release 46.0", [d for d in docs if d is not gone])
    _, counts, _, _ = _harvest(factory, without)
    assert counts.retired["patient"] == 1
    assert counts.retired["diagnosis"] == len(gone["diagnoses"])
    row = db.execute(
        text(
            "SELECT r.release FROM patient p JOIN source_release r ON r.id = p.retired_release_id "
            "WHERE p.case_id = :c"
        ),
        {"c": gone["case_id"]},
    ).scalar_one()
    assert row == "Data Release 46.0"
    live = db.execute(text("SELECT count(*) FROM patient WHERE retired_release_id IS NULL")).scalar_one()
    assert live == len(_expected_cases(store)) - 1

    back = _release(store, "Data Release 47.0", list(docs))
    _, again, _, _ = _harvest(factory, back)
    assert again.retired == {}
    retired_now = db.execute(
        text("SELECT count(*) FROM patient WHERE retired_release_id IS NOT NULL")
    ).scalar_one()
    assert retired_now == 0


def test_failed_harvest_retires_nothing(
    factory: sessionmaker[Session], db: Session, store: MirrorStore
) -> None:
    _harvest(factory, store)
    docs = store.documents("cases")
    half = _release(store, "Data Release 46.0", docs[: len(docs) // 2])
    injector = FaultInjector(FaultConfig(fail_rate=1.0))
    with (
        serve_mirror(half, faults=injector) as url,
        GdcClient(url, max_attempts=2, backoff_base_s=0.001) as client,
        pytest.raises(Exception, match="attempts"),
    ):
        harvest_gdc(factory, client, PROJECTS)
    assert (
        db.execute(text("SELECT count(*) FROM patient WHERE retired_release_id IS NOT NULL")).scalar_one()
        == 0
    )
    status = db.execute(text("SELECT status FROM run ORDER BY id DESC LIMIT 1")).scalar_one()
    assert status == "failed"


def test_release_diff_counts(factory: sessionmaker[Session], db: Session, store: MirrorStore) -> None:
    from oncograph.lineage.releases import diff_releases

    _harvest(factory, store)
    docs = [copy.deepcopy(d) for d in store.documents("cases")]
    chol = [
        d for d in docs if (d.get("project") or {}).get("project_id") == "TCGA-CHOL" and d.get("diagnoses")
    ]
    gone, edited = chol[0], chol[1]
    edited["diagnoses"][0]["days_to_last_follow_up"] = 4242
    _harvest(factory, _release(store, "Data Release 46.0", [d for d in docs if d is not gone]))
    diff = diff_releases(db, "Data Release 45", "Data Release 46")
    assert diff["entities"]["patient"] == {"added": 0, "changed": 0, "retired": 1}
    assert diff["entities"]["diagnosis"] == {"added": 0, "changed": 1, "retired": len(gone["diagnoses"])}
    assert diff["documents"]["case"] == {"new": 0, "changed": 1}


def test_a_project_marked_controlled_before_its_harvest_arrives_controlled(
    factory: sessionmaker[Session], db: Session, store: MirrorStore
) -> None:
    """The writer skips per-row foreign key triggers (ADR 0010); the trigger that copies an admin's controlled
    mark onto the project row an ingest inserts must still fire, and so must the graph version's."""
    from oncograph.access import set_project_controlled
    from oncograph.db.graph_version import read_graph_version

    assert set_project_controlled(db, "TCGA-BRCA", True, set_by="test")
    db.commit()
    before = read_graph_version(db).version
    _harvest(factory, store)
    controlled = dict(db.execute(text("SELECT project_id, controlled FROM project")).all())
    assert controlled["TCGA-BRCA"] is True and controlled["TCGA-CHOL"] is False
    # the outer test transaction never commits: the version moves only at commit; the pending mark says why
    assert read_graph_version(db).pending and read_graph_version(db).version == before
