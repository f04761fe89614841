"""Loading IDC's real series index (idc-index-data) into a real PostgreSQL: counts, lineage, versions,
bad input.

Expected counts are computed here from the index with pyarrow, independently of the loader. Files written to
``tmp_path`` hold REAL index rows: subsets of collections, or real rows with one value changed or removed
(each test says which).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.db.documents import unpack
from oncograph.errors import InputFormatError, NotFoundError, ValidationError
from oncograph.ingest.idc_import import import_idc
from oncograph.sources.idc import IndexFileError, default_index_path

COLLECTIONS = ["tcga_luad", "tcga_chol", "tcga_brca"]


@pytest.fixture(scope="module")
def index() -> Any:
    """The whole real index (every column), read once."""
    return pq.read_table(default_index_path())


def _subset(index: Any, collections: list[str]) -> Any:
    return index.filter(pc.is_in(index["collection_id"], value_set=pa.array(collections, pa.large_string())))


def _write(table: Any, path: Path) -> Path:
    pq.write_table(table, path)
    return path


def _with_value(table: Any, column: str, row: int, value: Any) -> Any:
    """``table`` with one cell replaced (the rest of the row, and every other row, stay real)."""
    values = table[column].to_pylist()
    values[row] = value
    i = table.column_names.index(column)
    return table.set_column(i, column, pa.array(values, table.schema.field(column).type))


def _expected(table: Any) -> dict[str, Any]:
    pairs = set(zip(table["collection_id"].to_pylist(), table["PatientID"].to_pylist(), strict=True))
    return {
        "idc_patient": len(pairs),
        "imaging_study": pc.count_distinct(table["StudyInstanceUID"]).as_py(),
        "imaging_series": table.num_rows,
        "modalities": Counter(
            zip(table["collection_id"].to_pylist(), table["Modality"].to_pylist(), strict=True)
        ),
    }


def _scalar(db: Session, sql: str, **params: Any) -> Any:
    return db.execute(text(sql), params).scalar_one()


def test_load_matches_the_index(factory: sessionmaker[Session], db: Session, index: Any) -> None:
    result = import_idc(factory, collections=COLLECTIONS)

    expected = _expected(_subset(index, COLLECTIONS))
    entities = result.as_dict()["entities"]
    for kind in ("idc_patient", "imaging_study", "imaging_series"):
        assert entities[kind] == {
            "inserted": expected[kind],
            "updated": 0,
            "unchanged": 0,
            "quarantined": 0,
            "retired": 0,
        }, kind
        assert _scalar(db, f"SELECT count(*) FROM {kind}") == expected[kind]
    stored = Counter(
        {
            (c, m): n
            for c, m, n in db.execute(
                text("SELECT collection_id, modality, count(*) FROM imaging_series GROUP BY 1, 2")
            )
        }
    )
    assert stored == expected["modalities"]
    # every series links to a study and a patient of its own collection and PatientID
    assert (
        _scalar(
            db,
            "SELECT count(*) FROM imaging_series s JOIN imaging_study st ON st.id = s.imaging_study_id "
            "JOIN idc_patient p ON p.id = s.idc_patient_id WHERE p.collection_id = s.collection_id",
        )
        == expected["imaging_series"]
    )
    # TCGA PatientIDs are 12-character case barcodes
    assert _scalar(db, "SELECT count(*) FROM idc_patient WHERE patient_id !~ '^TCGA-..-....$'") == 0


def test_lineage_points_to_the_file_and_its_row(
    factory: sessionmaker[Session], db: Session, index: Any
) -> None:
    result = import_idc(factory, collections=["tcga_chol"])

    path = default_index_path()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    import idc_index_data

    release = _scalar(db, "SELECT release FROM source_release WHERE source = 'idc'")
    top = pc.max(index["series_revised_idc_version"]).as_py()
    assert release == result.release == f"idc v{top} (idc-index-data {idc_index_data.__version__})"
    doc = db.execute(
        text("SELECT id, source, entity_type, entity_id, content_hash, raw_zstd FROM source_document")
    ).one()
    assert (doc.source, doc.entity_type, doc.entity_id, doc.content_hash) == (
        "idc_index",
        "index_file",
        "idc_index.parquet",
        sha,
    )
    raw = unpack(doc.raw_zstd)
    assert raw["sha256"] == sha and raw["row_count"] == index.num_rows
    assert raw["columns"] == index.column_names and raw["package"] == "idc-index-data"
    rows = db.execute(
        text(
            "SELECT series_instance_uid, index_row, source_document_id, first_seen_release_id, "
            "last_seen_release_id, retired_release_id FROM imaging_series"
        )
    ).all()
    assert {r.source_document_id for r in rows} == {doc.id}
    assert all(
        r.first_seen_release_id == r.last_seen_release_id and r.retired_release_id is None for r in rows
    )
    for r in rows:  # index_row is the series' row in the file the document points to
        assert index["SeriesInstanceUID"][r.index_row].as_py() == r.series_instance_uid
    run = db.execute(text("SELECT status, transform, source_release_id, counts FROM run")).one()
    assert (run.status, run.transform) == ("succeeded", "ingest_idc")
    assert run.counts["entities"]["imaging_series"]["inserted"] == len(rows) == 110


def test_reloading_the_same_version_changes_nothing(factory: sessionmaker[Session], db: Session) -> None:
    import_idc(factory, collections=["tcga_chol", "tcga_luad"])
    before = db.execute(
        text("SELECT id, row_hash, updated_at, last_seen_release_id FROM imaging_series")
    ).all()

    again = import_idc(factory, collections=["tcga_chol", "tcga_luad"]).as_dict()["entities"]

    for kind, counts in again.items():
        assert counts["inserted"] == counts["updated"] == counts["retired"] == 0, kind
        assert counts["unchanged"] == _scalar(db, f"SELECT count(*) FROM {kind}"), kind
    after = db.execute(
        text("SELECT id, row_hash, updated_at, last_seen_release_id FROM imaging_series")
    ).all()
    assert sorted(after) == sorted(before)
    assert _scalar(db, "SELECT count(*) FROM source_document") == 1
    assert _scalar(db, "SELECT count(*) FROM source_release WHERE source = 'idc'") == 1


def test_a_new_version_updates_changed_rows_and_retires_missing_ones(
    factory: sessionmaker[Session], db: Session, index: Any, tmp_path: Path
) -> None:
    v1 = _subset(index, ["tcga_chol", "tcga_luad"])
    import_idc(factory, index_path=_write(v1, tmp_path / "idc_index_v1.parquet"))
    # v2: real rows; row 0 revised (new description, revised in IDC v26); every row of one tcga_chol
    # patient removed (one removed patient, its study and series)
    changed_uid = v1["SeriesInstanceUID"][0].as_py()
    v2 = _with_value(v1, "SeriesDescription", 0, "revised description")
    v2 = _with_value(v2, "series_revised_idc_version", 0, 26)
    chol = v1.filter(pc.equal(v1["collection_id"], "tcga_chol"))
    gone_patient = chol["PatientID"][-1].as_py()
    assert gone_patient != v1["PatientID"][0].as_py()
    keep = pc.invert(
        pc.and_(pc.equal(v2["collection_id"], "tcga_chol"), pc.equal(v2["PatientID"], gone_patient))
    )
    gone = v2.filter(pc.invert(keep))
    v2 = v2.filter(keep)

    result = import_idc(factory, index_path=_write(v2, tmp_path / "idc_index_v2.parquet"))

    assert result.release.startswith("idc v26 (idc_index_v2.parquet sha256:")
    series = result.as_dict()["entities"]["imaging_series"]
    assert series == {
        "inserted": 0,
        "updated": 1,
        "unchanged": v2.num_rows - 1,
        "quarantined": 0,
        "retired": gone.num_rows,
    }
    assert result.entities["idc_patient"].retired == 1
    assert result.entities["imaging_study"].retired == pc.count_distinct(gone["StudyInstanceUID"]).as_py()
    v1_rel, v2_rel = (
        _scalar(db, "SELECT id FROM source_release WHERE release LIKE :r", r=f"%{name}%")
        for name in ("idc_index_v1", "idc_index_v2")
    )
    v1_doc, v2_doc = (
        _scalar(db, "SELECT id FROM source_document WHERE location LIKE :f", f=f"%{name}")
        for name in ("idc_index_v1.parquet", "idc_index_v2.parquet")
    )
    row = db.execute(
        text("SELECT * FROM imaging_series WHERE series_instance_uid = :u"), {"u": changed_uid}
    ).one()
    assert (row.series_description, row.series_revised_idc_version) == ("revised description", 26)
    assert (row.source_document_id, row.last_seen_release_id, row.first_seen_release_id) == (
        v2_doc,
        v2_rel,
        v1_rel,
    )
    assert v2["SeriesInstanceUID"][row.index_row].as_py() == changed_uid
    # unchanged rows were seen again but keep the document (and row) their values came from
    assert (
        _scalar(
            db,
            "SELECT count(*) FROM imaging_series WHERE last_seen_release_id = :v2 "
            "AND source_document_id = :v1 "
            "AND retired_release_id IS NULL",
            v2=v2_rel,
            v1=v1_doc,
        )
        == v2.num_rows - 1
    )
    retired = db.execute(
        text("SELECT series_instance_uid FROM imaging_series WHERE retired_release_id = :v2"), {"v2": v2_rel}
    ).scalars()
    assert set(retired) == set(gone["SeriesInstanceUID"].to_pylist())
    assert (
        _scalar(db, "SELECT retired_release_id FROM idc_patient WHERE patient_id = :p", p=gone_patient)
        == v2_rel
    )

    # v1 again: the missing rows come back (un-retired, never duplicated), the revised row reverts
    back = import_idc(factory, index_path=tmp_path / "idc_index_v1.parquet").as_dict()["entities"]
    assert back["imaging_series"]["inserted"] == 0 and back["imaging_series"]["updated"] == 1
    assert _scalar(db, "SELECT count(*) FROM imaging_series WHERE retired_release_id IS NOT NULL") == 0
    assert _scalar(db, "SELECT count(*) FROM idc_patient WHERE retired_release_id IS NOT NULL") == 0
    assert _scalar(db, "SELECT count(*) FROM imaging_series") == v1.num_rows


def test_a_collection_load_retires_only_in_its_collections(
    factory: sessionmaker[Session], db: Session, index: Any, tmp_path: Path
) -> None:
    v1 = _subset(index, ["tcga_chol", "tcga_luad"])
    import_idc(factory, index_path=_write(v1, tmp_path / "v1.parquet"))
    v2 = v1.filter(pc.equal(v1["collection_id"], "tcga_chol")).slice(
        1
    )  # real rows; tcga_luad and one chol row gone

    result = import_idc(factory, index_path=_write(v2, tmp_path / "v2.parquet"), collections=["tcga_chol"])

    assert result.entities["imaging_series"].retired == 1
    assert _scalar(db, "SELECT count(*) FROM imaging_series WHERE retired_release_id IS NOT NULL") == 1
    assert (
        _scalar(
            db,
            "SELECT count(*) FROM imaging_series WHERE collection_id = 'tcga_luad' "
            "AND retired_release_id IS NULL",
        )
        == pc.sum(pc.equal(v1["collection_id"], "tcga_luad")).as_py()
    )


def test_rows_without_a_key_are_quarantined_and_the_rest_loads(
    factory: sessionmaker[Session], db: Session, index: Any, tmp_path: Path
) -> None:
    # real tcga_chol rows; row 3 has its StudyInstanceUID removed, row 5 an empty SeriesInstanceUID,
    # row 7 no PatientID and no StudyInstanceUID
    chol = _subset(index, ["tcga_chol"])
    bad = _with_value(chol, "StudyInstanceUID", 3, None)
    bad = _with_value(bad, "SeriesInstanceUID", 5, "")
    bad = _with_value(bad, "PatientID", 7, None)
    bad = _with_value(bad, "StudyInstanceUID", 7, None)
    path = _write(bad, tmp_path / "idc_index_bad.parquet")

    result = import_idc(factory, index_path=path)

    assert result.entities["imaging_series"].quarantined == 3
    assert result.entities["imaging_series"].inserted == chol.num_rows - 3
    entries = {
        q.location: q
        for q in db.execute(
            text("SELECT location, entity_id, entity_type, source, reasons, raw FROM quarantine")
        )
    }
    assert set(entries) == {f"idc_index_bad.parquet > row {i} > collection tcga_chol" for i in (3, 5, 7)}
    row3 = entries["idc_index_bad.parquet > row 3 > collection tcga_chol"]
    assert (row3.source, row3.entity_type, row3.reasons) == (
        "idc_index",
        "series",
        ["StudyInstanceUID is missing"],
    )
    assert row3.entity_id == chol["SeriesInstanceUID"][3].as_py() == row3.raw["SeriesInstanceUID"]
    assert entries["idc_index_bad.parquet > row 5 > collection tcga_chol"].entity_id is None
    assert entries["idc_index_bad.parquet > row 7 > collection tcga_chol"].reasons == [
        "PatientID is missing",
        "StudyInstanceUID is missing",
    ]
    assert _scalar(db, "SELECT count(*) FROM imaging_series") == chol.num_rows - 3


def test_a_repeated_series_is_quarantined(
    factory: sessionmaker[Session], db: Session, index: Any, tmp_path: Path
) -> None:
    chol = _subset(index, ["tcga_chol"])
    # a real row appended again with another description: the second occurrence cannot be stored
    again = _with_value(chol.slice(4, 1), "SeriesDescription", 0, "second copy")
    path = _write(pa.concat_tables([chol, again]), tmp_path / "repeated.parquet")

    result = import_idc(factory, index_path=path)

    assert result.entities["imaging_series"].quarantined == 1
    assert result.entities["imaging_series"].inserted == chol.num_rows
    reasons, location = db.execute(text("SELECT reasons, location FROM quarantine")).one()
    assert reasons == ["SeriesInstanceUID repeats row 4"]
    assert location == f"repeated.parquet > row {chol.num_rows} > collection tcga_chol"


@pytest.mark.parametrize("damage", ["truncated", "not_parquet"])
def test_a_damaged_file_is_a_clear_error_and_writes_nothing(
    factory: sessionmaker[Session], db: Session, index: Any, tmp_path: Path, damage: str
) -> None:
    good = _write(_subset(index, ["tcga_chol"]), tmp_path / "good.parquet").read_bytes()
    path = tmp_path / "idc_index_damaged.parquet"
    path.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"collection_id,PatientID\n")

    with pytest.raises(IndexFileError, match=r"idc_index_damaged\.parquet"):
        import_idc(factory, index_path=path)

    for table in ("run", "source_release", "source_document", "quarantine", "idc_patient", "imaging_series"):
        assert _scalar(db, f"SELECT count(*) FROM {table}") == 0, table


def test_a_file_without_the_index_columns_is_refused(
    factory: sessionmaker[Session], db: Session, index: Any, tmp_path: Path
) -> None:
    path = _write(_subset(index, ["tcga_chol"]).drop_columns(["StudyInstanceUID"]), tmp_path / "cut.parquet")

    with pytest.raises(InputFormatError, match="no column StudyInstanceUID"):
        import_idc(factory, index_path=path)
    assert _scalar(db, "SELECT count(*) FROM run") == 0


def test_an_unknown_collection_is_refused_with_a_suggestion(factory: sessionmaker[Session]) -> None:
    with pytest.raises(NotFoundError, match=r"tcga-luad.*did you mean tcga_luad"):
        import_idc(factory, collections=["tcga-luad"])


def test_values_that_postgres_cannot_hold_are_kept_and_reported(
    factory: sessionmaker[Session], db: Session, index: Any, tmp_path: Path
) -> None:
    # phantom_fda's real rows: 240 SeriesDescription values hold a NUL character; and one real row whose
    # StudyDate is altered to an impossible date
    phantom = _subset(index, ["phantom_fda"])
    nul = pc.sum(pc.match_substring(phantom["SeriesDescription"], "\x00")).as_py()
    altered = _with_value(phantom, "StudyDate", 0, "2019-13-45")
    result = import_idc(factory, index_path=_write(altered, tmp_path / "phantom.parquet"))

    assert result.entities["imaging_series"].inserted == phantom.num_rows
    assert any(f"{nul} SeriesDescription values hold NUL" in w for w in result.warnings)
    assert any(
        "1 StudyDate values are not a YYYY-MM-DD date (e.g. ['2019-13-45'])" in w for w in result.warnings
    )
    assert (
        _scalar(
            db, "SELECT count(*) FROM imaging_series WHERE series_description LIKE '%' || chr(65533) || '%'"
        )
        == nul
    )


def test_a_broken_foreign_key_fails_the_load_and_leaves_the_graph_as_it_was(
    factory: sessionmaker[Session], db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oncograph.ingest.idc_merge as merge

    real = merge.group_ids

    def off_by_a_billion(session: Session) -> tuple[Any, Any]:
        studies, patients = real(session)
        return pc.add(studies, 10**9), patients

    monkeypatch.setattr(merge, "group_ids", off_by_a_billion)  # a bug that would point series nowhere

    with pytest.raises(ValidationError, match="fk_imaging_series_imaging_study_id_imaging_study: 51 values"):
        import_idc(factory, collections=["tcga_chol"])

    for table in ("idc_patient", "imaging_study", "imaging_series", "source_document"):
        assert _scalar(db, f"SELECT count(*) FROM {table}") == 0, table
    status, error = db.execute(text("SELECT status, error FROM run")).one()
    assert status == "failed" and "broke foreign keys" in error


def test_a_role_without_bulk_privileges_loads_the_same_rows(fresh_db_url: str, index: Any) -> None:
    """Not superuser and not the tables' owner: foreign keys are checked by their triggers, indexes are
    maintained row by row; the result is the same."""
    role = f"idc_loader_{os.getpid()}"
    owner = create_engine(fresh_db_url)
    with owner.begin() as conn:
        conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
    url = make_url(fresh_db_url).set(username=role)
    engine = create_engine(url)
    try:
        result = import_idc(sessionmaker(bind=engine), collections=["tcga_chol"])
        assert result.bulk == {"set_based_fk_checks": False, "index_rebuild": []}
        expected = _expected(_subset(index, ["tcga_chol"]))
        for kind in ("idc_patient", "imaging_study", "imaging_series"):
            assert result.entities[kind].inserted == expected[kind], kind
        again = import_idc(sessionmaker(bind=engine), collections=["tcga_chol"])
        assert again.entities["imaging_series"].unchanged == expected["imaging_series"]
    finally:
        engine.dispose()
        with owner.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        owner.dispose()


def test_the_command(fresh_db_url: str, tmp_path: Path) -> None:
    """``oncograph ingest idc`` (the command function, in its own process as a user runs it)."""
    app = (
        "import typer; from oncograph_cli.commands.ingest_idc import ingest_idc; "
        "app = typer.Typer(); app.command()(ingest_idc); app()"
    )
    env = {**os.environ, "ONCOGRAPH_DATABASE_URL": fresh_db_url, "ONCOGRAPH_HOME": str(tmp_path / "home")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", app, *args], env=env, capture_output=True, text=True, timeout=300
        )

    out = run("--collection", "tcga_chol", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["entities"]["imaging_series"]["inserted"] == 110
    assert payload["entities"]["idc_patient"]["inserted"] == 51
    assert payload["release"].startswith("idc v")
    again = json.loads(run("-c", "tcga_chol", "--json").stdout)
    assert again["entities"]["imaging_series"] == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 110,
        "quarantined": 0,
        "retired": 0,
    }
    usage = run("--json")
    assert usage.returncode == 1 and "--collection" in usage.stderr
    missing = run("--collection", "tcga_nope")
    assert missing.returncode == 1 and "tcga_nope is not in the IDC index" in missing.stderr
