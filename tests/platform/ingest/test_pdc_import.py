"""PDC import through the real client from the real stand-in (recorded PDC answers) into real PostgreSQL."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.documents import unpack
from oncograph.errors import SourceError
from oncograph.ingest.pdc_import import Item, ingest_pdc, write_items
from oncograph.lineage.runs import ensure_release, start_run
from oncograph.sources.gdc.mirror import FaultConfig
from oncograph.sources.pdc import PdcClient, PdcGraphQLError
from oncograph.sources.pdc.records import PDC_NAMESPACE
from oncograph.sources.pdc.standin import RecordedPdc, serve_pdc

DATA = Path(__file__).resolve().parents[3] / "data" / "pdc"
PLAN: dict[str, Any] = {
    "studies": ["PDC000109", "PDC000110", "PDC000111", "S038-3"],
    "file_types": ["RAW"],
    "cases": ["01BR001"],
}
TABLES = ("pdc_study", "pdc_case", "pdc_study_case", "pdc_file", "source_document", "quarantine")


def _recorded(name: str, key: str = "response") -> Any:
    return orjson.loads((DATA / name).read_bytes())[key]["data"]


STUDIES = _recorded(
    "pdc_graphql_studyCatalog_and_study_PDC000109-111_gen3_fixture.json", "study_aliased_response"
)
FILES = _recorded("pdc_graphql_filesPerStudy_S038-3_RAW_2019.json")["filesPerStudy"]
CASE = _recorded("pdc_graphql_case_01BR001_gdc_case_id_2019.json")["case"]


@pytest.fixture(scope="module")
def store() -> RecordedPdc:
    return RecordedPdc.from_directory(DATA)


@pytest.fixture(scope="module")
def url(store: RecordedPdc) -> Iterator[str]:
    with serve_pdc(store) as served:
        yield served


def _client(url: str) -> PdcClient:
    return PdcClient(url, page_size=50, max_attempts=30, backoff_max_s=0.01, rng=random.Random(3))


def _snapshot(db: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in TABLES:
        stamp = "max(updated_at)" if table.startswith("pdc_") else "max(id)"
        out[table] = tuple(db.execute(text(f"SELECT count(*), {stamp} FROM {table}")).one())
    return out


def test_ingest_counts_match_the_recordings_and_reingest_is_a_noop(
    factory: sessionmaker[Session], db: Session, url: str
) -> None:
    with _client(url) as client:
        first, counts = ingest_pdc(factory, client, **PLAN)
        again, counts_again = ingest_pdc(factory, client, **PLAN)
    entities = counts.entities()
    assert entities["pdc_study"]["inserted"] == len(STUDIES) == 3
    assert entities["pdc_file"]["inserted"] == len(FILES) == 144
    assert entities["pdc_case"]["inserted"] == 1
    assert counts.documents_new == len(STUDIES) + len(FILES) + 1
    assert counts.notes == ["study S038-3: PDC returned no study record; 144 files stored without a study"]
    assert first.release == again.release and first.release.startswith("pdc recorded responses sha256:")
    for table, c in counts_again.entities().items():
        assert (c["inserted"], c["updated"], c["quarantined"]) == (0, 0, 0), table
    assert counts_again.documents_new == 0
    assert counts_again.entities()["pdc_file"]["unchanged"] == 144

    studies = {r.pdc_study_id: r for r in db.execute(text("SELECT * FROM pdc_study"))}
    assert set(studies) == set(STUDIES)
    for sid, (recorded,) in STUDIES.items():
        row = studies[sid]
        assert (row.study_id, row.study_name, row.cases_count) == (
            recorded["study_id"], recorded["study_name"], recorded["cases_count"]
        )  # fmt: skip
        assert row.files_count == sum(c["files_count"] for c in recorded["filesCount"])
    files = db.execute(text("SELECT file_name, md5sum, key_derived, study_row_id FROM pdc_file")).all()
    assert {(f.file_name, f.md5sum) for f in files} == {(f["file_name"], f["md5sum"]) for f in FILES}
    assert all(f.key_derived and f.study_row_id is None for f in files)
    case = db.execute(text("SELECT * FROM pdc_case")).one()
    assert (case.case_submitter_id, case.project_submitter_id) == ("01BR001", "CPTAC-2")
    assert str(case.gdc_case_id) == CASE["gdc_case_id"] and case.gdc_case_id_field == "gdc_case_id"
    assert case.key_derived and case.case_id == uuid.uuid5(PDC_NAMESPACE, "pdc_case:CPTAC-2:01BR001")

    lineage = db.execute(
        text(
            "SELECT d.source, d.entity_type, d.location, d.raw_zstd, r.source AS rsource, r.release FROM pdc_case c "
            "JOIN source_document d ON d.id = c.source_document_id JOIN source_release r ON r.id = d.release_id"
        )
    ).one()
    assert (lineage.source, lineage.entity_type, lineage.rsource) == ("pdc_graphql", "case", "pdc")
    assert unpack(lineage.raw_zstd)["gdc_case_id"] == CASE["gdc_case_id"] and lineage.release == first.release
    assert "case(case_submitter_id=01BR001) > item 0" in lineage.location
    runs = (
        db.execute(text("SELECT status FROM run WHERE transform = 'ingest_pdc' ORDER BY id")).scalars().all()
    )
    assert runs == ["succeeded", "succeeded"]


def test_catalog_is_the_default_plan(factory: sessionmaker[Session], url: str) -> None:
    with _client(url) as client:
        _, counts = ingest_pdc(factory, client)
    assert counts.entities()["pdc_study"]["inserted"] == 3 and counts.items == 3


def test_faults_are_retried_and_change_nothing(
    factory: sessionmaker[Session], db: Session, store: RecordedPdc, url: str
) -> None:
    with _client(url) as client:
        ingest_pdc(factory, client, **PLAN)
    clean = db.execute(text("SELECT pdc_study_id, study_name FROM pdc_study ORDER BY 1")).all()
    faults = FaultConfig(fail_rate=0.3, truncate_rate=0.2, seed=11)
    with serve_pdc(store, faults=faults) as faulty_url, _client(faulty_url) as client:
        _, counts = ingest_pdc(factory, client, **PLAN)
        assert client.retries > 0
    assert all(c["inserted"] + c["updated"] == 0 for c in counts.entities().values())
    assert db.execute(text("SELECT pdc_study_id, study_name FROM pdc_study ORDER BY 1")).all() == clean


@pytest.mark.parametrize("field", ["paginatedCasesSamplesAliquots", "filesPerStudy"])
def test_an_errors_body_fails_cleanly_and_keeps_earlier_data(
    factory: sessionmaker[Session], db: Session, store: RecordedPdc, url: str, field: str
) -> None:
    failing_server = serve_pdc(store, fail_fields=frozenset({field}))
    with failing_server as failing, _client(failing) as client, pytest.raises(PdcGraphQLError):
        ingest_pdc(factory, client, **PLAN)  # nothing stored yet: nothing may be written
    assert _snapshot(db)["pdc_study"][0] == 0 and _snapshot(db)["source_document"][0] == 0
    with _client(url) as client:
        ingest_pdc(factory, client, **PLAN)
    before = _snapshot(db)
    failing_server = serve_pdc(store, fail_fields=frozenset({field}))
    with failing_server as failing, _client(failing) as client, pytest.raises(SourceError) as err:
        ingest_pdc(factory, client, **PLAN)
    assert f"simulated resolver failure in {field}" in str(err.value)
    assert _snapshot(db) == before
    status, error = db.execute(text("SELECT status, error FROM run ORDER BY id DESC LIMIT 1")).one()
    assert status == "failed" and "PdcGraphQLError" in error and field in error


def test_bad_items_are_quarantined_with_their_raw_content(
    factory: sessionmaker[Session], db: Session
) -> None:
    good, broken = dict(FILES[0]), {**FILES[1], "file_size": "not a number"}
    with factory() as s, s.begin():
        release_id = ensure_release(s, source="pdc", release="test: recorded items, one corrupted")
        run = start_run(s, transform="test", parameters={})
        items = [
            Item("file", good, "recorded > item 0", "S038-3"),
            Item("file", broken, "recorded > item 1, file_size corrupted", "S038-3"),
            Item("case", ["not", "an", "object"], "recorded > item 2", None),
            Item("case", {k: v for k, v in CASE.items() if k != "project_submitter_id"}, "recorded > item 3"),
        ]
        counts = write_items(s, items, release_id=release_id, run_id=run.id)
    assert counts.entities()["pdc_file"] == {"inserted": 1, "updated": 0, "unchanged": 0, "quarantined": 1}
    assert counts.quarantined["pdc_case"] == 2
    rows = db.execute(text("SELECT entity_type, reasons, raw FROM quarantine ORDER BY id")).all()
    assert [r.entity_type for r in rows] == ["file", "case", "case"]
    assert "file_size: expected a whole number" in rows[0].reasons[0] and rows[0].raw == broken
    assert "expected a JSON object" in rows[1].reasons[0] and rows[1].raw == ["not", "an", "object"]
    assert "the case cannot be keyed" in rows[2].reasons[0]


def test_a_real_id_promotes_the_derived_key(factory: sessionmaker[Session], db: Session) -> None:
    # the recordings have no case_id; a live-era answer for the same case would carry one (made up here)
    live_id = "0a7f6b2e-0000-4000-8000-000000000001"
    with factory() as s, s.begin():
        release_id = ensure_release(s, source="pdc", release="test: derived then real key")
        run = start_run(s, transform="test", parameters={})
        write_items(s, [Item("case", dict(CASE), "recorded")], release_id=release_id, run_id=run.id)
        first_id = s.execute(text("SELECT id FROM pdc_case")).scalar_one()
        live = {**CASE, "case_id": live_id, "primary_site": "Breast"}
        counts = write_items(s, [Item("case", live, "live")], release_id=release_id, run_id=run.id)
        again = write_items(s, [Item("case", dict(CASE), "recorded")], release_id=release_id, run_id=run.id)
    row = db.execute(text("SELECT id, CAST(case_id AS text), key_derived, primary_site FROM pdc_case")).one()
    assert tuple(row) == (first_id, live_id, False, "Breast")
    assert counts.entities()["pdc_case"]["updated"] == 1
    assert again.entities()["pdc_case"]["inserted"] == 0  # the recorded item resolves to the real key


def test_cli_json(url: str, fresh_db_url: str, tmp_path: Path) -> None:
    run = "import typer; from oncograph_cli.commands.ingest_pdc import ingest_pdc; typer.run(ingest_pdc)"
    env = {
        **os.environ,
        "ONCOGRAPH_DATABASE_URL": fresh_db_url,
        "ONCOGRAPH_HOME": str(tmp_path),
        "ONCOGRAPH_PDC_URL": url,
    }
    args = [
        sys.executable,
        "-c",
        run,
        "--study",
        "S038-3",
        "--file-type",
        "RAW",
        "--case",
        "01BR001",
        "--json",
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert result["pdc_url"] == url and result["entities"]["pdc_file"]["inserted"] == 144
    engine = create_engine(fresh_db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM pdc_file")).scalar_one() == 144
    engine.dispose()
    wrong = url.replace("/graphql", "/not-graphql")
    bad = subprocess.run(
        [*args[:3], "--pdc-url", wrong], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1 and "HTTP 404" in " ".join(bad.stderr.split())
