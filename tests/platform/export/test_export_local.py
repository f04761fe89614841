"""Dataset export to a local folder, on a private copy of the real sample graph (TCGA-LIHC, -LUAD and -CHOL
patients with their GDC files, IDC series and clinical records).

Every table is checked against the graph with SQL written here, independently of the export's queries. The
copy is changed first so that the interesting paths run: rows retired by a later release (must not be
exported), GDC files marked controlled and a project marked controlled (need a grant), one GDC file shared by
three patients of different projects (must keep them in one split) and stored embeddings.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from oncograph import embeddings
from oncograph.access import Scope
from oncograph.cohorts import saved
from oncograph.cohorts.survival import survival_data
from oncograph.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oncograph.export import storage, writer
from oncograph.export.job import ExportOptions, ExportResult, run_export
from oncograph.export.schema import EXPORT_SCHEMA_VERSION, STRATIFY_FIELDS

EVERYTHING = Scope.everything()
PROJECTS = ("TCGA-CHOL", "TCGA-LIHC", "TCGA-LUAD")
CLINICAL = {
    "diagnoses": ("diagnosis", "diagnosis_id"),
    "treatments": ("treatment", "treatment_id"),
    "follow_ups": ("follow_up", "follow_up_id"),
    "exposures": ("exposure", "exposure_id"),
    "samples": ("sample", "sample_id"),
}
EMB_MODEL = "test-enc/v1"
EMB_DIM = 8
ExportDB = Any  # tests/platform/export/conftest.py
Cohort = Any


def project_filter(*projects: str) -> dict[str, Any]:
    return {"op": "in", "content": {"field": "project.project_id", "value": list(projects)}}


# -- the graph and its main export -------------------------------------------------------------------------


@dataclass
class Graph:
    db: ExportDB
    retired: dict[str, str]
    """table -> the GDC/DICOM id of the member row retired by a later release."""
    controlled_files: set[str]
    controlled_patients: set[str]
    """LIHC patients all of whose GDC files are marked controlled."""
    shared_file: str
    shared_patients: set[str]
    vectors: dict[str, np.ndarray]
    """object_id -> the stored embedding."""
    outsider_object: str
    """An embedding of a patient outside every cohort."""
    alice: Any
    main: Cohort
    chol: Cohort


def _one(db: ExportDB, query: str, **params: Any) -> str:
    rows = db.sql(query, **params)
    assert rows, query
    return str(rows[0][0])


def _prepare(db: ExportDB) -> Graph:
    members = "(SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id WHERE pr.project_id IN "
    members += "('TCGA-CHOL', 'TCGA-LIHC', 'TCGA-LUAD'))"
    lihc = "(SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id WHERE pr.project_id = 'TCGA-LIHC')"
    release = int(db.sql("SELECT max(id) FROM source_release")[0][0])

    # one GDC file of a LIHC patient becomes shared with the first LUAD and the first CHOL patient
    shared_row = db.sql(
        f"SELECT f.id, f.file_id::text, p.case_id::text FROM data_file f JOIN file_patient fp ON fp.file_id = f.id "
        f"JOIN patient p ON p.id = fp.patient_id WHERE fp.patient_id IN {lihc} ORDER BY f.file_id LIMIT 1"
    )[0]
    others = db.sql(
        "SELECT DISTINCT ON (pr.project_id) p.id, p.case_id::text FROM patient p "
        "JOIN project pr ON pr.id = p.project_id WHERE pr.project_id IN ('TCGA-LUAD', 'TCGA-CHOL') "
        "ORDER BY pr.project_id, p.case_id"
    )
    for pid, _ in others:
        db.execute("INSERT INTO file_patient (file_id, patient_id) VALUES (:f, :p)", f=shared_row[0], p=pid)
    shared_patients = {shared_row[2], *(c for _, c in others)}

    # every GDC file of three LIHC patients with RNA-Seq (not the shared file's patient) becomes controlled
    chosen = db.sql(
        f"SELECT DISTINCT p.id, p.case_id::text FROM patient p JOIN file_patient fp ON fp.patient_id = p.id "
        f"JOIN data_file f ON f.id = fp.file_id WHERE p.id IN {lihc} AND p.case_id::text <> :shared "
        f"AND f.data_type = 'Gene Expression Quantification' ORDER BY p.case_id::text LIMIT 3",
        shared=shared_row[2],
    )
    assert len(chosen) == 3
    pids = [int(p) for p, _ in chosen]
    db.execute(
        "UPDATE data_file SET access = 'controlled' WHERE id IN "
        "(SELECT file_id FROM file_patient WHERE patient_id = ANY(:p))",
        p=pids,
    )
    controlled_files = {
        str(r[0])
        for r in db.sql(
            "SELECT f.file_id::text FROM data_file f JOIN file_patient fp ON fp.file_id = f.id "
            "WHERE fp.patient_id = ANY(:p)",
            p=pids,
        )
    }
    assert shared_row[1] not in controlled_files

    # rows retired by a later release: one of each kind, of members
    retired: dict[str, str] = {}
    for table, key in CLINICAL.values():
        retired[table] = _one(
            db, f"SELECT {key}::text FROM {table} WHERE patient_id IN {members} ORDER BY {key} LIMIT 1"
        )
        db.execute(
            f"UPDATE {table} SET retired_release_id = :r WHERE {key}::text = :k", r=release, k=retired[table]
        )
    retired["data_file"] = _one(
        db,
        f"SELECT f.file_id::text FROM data_file f JOIN file_patient fp ON fp.file_id = f.id "
        f"WHERE fp.patient_id IN {lihc} AND NOT (f.file_id::text = ANY(:skip)) ORDER BY f.file_id DESC LIMIT 1",
        skip=[shared_row[1], *controlled_files],
    )
    db.execute(
        "UPDATE data_file SET retired_release_id = :r WHERE file_id::text = :k",
        r=release,
        k=retired["data_file"],
    )
    retired["imaging_series"] = _one(
        db,
        f"SELECT s.series_instance_uid FROM identity_link l JOIN idc_patient ip ON ip.collection_id = l.namespace "
        f"AND ip.patient_id = l.external_id JOIN imaging_series s ON s.idc_patient_id = ip.id "
        f"WHERE l.commons = 'idc' AND l.patient_id IN {lihc} AND s.modality = 'MR' "
        f"ORDER BY s.series_instance_uid LIMIT 1",
    )
    db.execute(
        "UPDATE imaging_series SET retired_release_id = :r WHERE series_instance_uid = :k",
        r=release,
        k=retired["imaging_series"],
    )

    # the project TCGA-CHOL becomes controlled (its patients need a grant)
    db.execute("UPDATE project SET controlled = true WHERE project_id = 'TCGA-CHOL'")

    # embeddings (seeded random vectors): 20 LUAD patients, one with two slides; one patient outside the cohorts
    rng = np.random.default_rng(11)
    luad = db.sql(
        "SELECT p.id, p.case_id::text FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-LUAD' ORDER BY p.case_id LIMIT 20"
    )
    outsider = db.sql(
        "SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-BRCA' ORDER BY p.case_id LIMIT 1"
    )[0][0]
    rows: list[embeddings.EmbeddingRow] = []
    vectors: dict[str, np.ndarray] = {}
    for i, (pid, _) in enumerate([*luad, (outsider, "")]):
        for j in range(2 if i == 0 else 1):
            object_id = f"slide-{pid}-{j}"
            vectors[object_id] = rng.normal(size=EMB_DIM).astype(np.float32)
            rows.append(
                embeddings.EmbeddingRow(
                    int(pid), "slide", object_id, "slide", EMB_MODEL, "1", vectors[object_id].tolist()
                )
            )
    with db.factory() as s, s.begin():
        embeddings.store_embeddings(s, rows)

    alice = db.principal("alice", "curator")
    main = db.cohort(project_filter(*PROJECTS), alice, EVERYTHING)
    chol = db.cohort(project_filter("TCGA-CHOL"), alice, EVERYTHING)
    return Graph(
        db=db,
        retired=retired,
        controlled_files=controlled_files,
        controlled_patients={c for _, c in chosen},
        shared_file=str(shared_row[1]),
        shared_patients=shared_patients,
        vectors=vectors,
        outsider_object=f"slide-{outsider}-0",
        alice=alice,
        main=main,
        chol=chol,
    )


@pytest.fixture(scope="module")
def graph(export_db: ExportDB) -> Graph:
    return _prepare(export_db)


@dataclass
class Exported:
    path: Path
    result: ExportResult
    manifest: dict[str, Any]
    cohort: Cohort

    def table(self, name: str) -> pa.Table:
        return pq.read_table(self.path / name)

    def rows(self, name: str, *columns: str) -> list[dict[str, Any]]:
        return self.table(name).select(list(columns)).to_pylist()


def _export(graph: Graph, cohort: Cohort, path: Path, **kwargs: Any) -> Exported:
    result = graph.db.export(cohort, path, **kwargs)
    manifest = json.loads((path / "manifest.json").read_text())
    return Exported(path, result, manifest, cohort)


@pytest.fixture(scope="module")
def main(graph: Graph, export_tmp: Callable[[str], Path]) -> Exported:
    """The main cohort (every TCGA-LIHC, -LUAD and -CHOL patient), exported once with the default options."""
    return _export(graph, graph.main, export_tmp("main"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _member_rows(graph: Graph, cohort: Cohort, query: str) -> list[Any]:
    """``query`` with ``{members}`` replaced by the version's member rows, as ``p`` (patient)."""
    base = "cohort_member m JOIN patient p ON p.id = m.patient_id AND m.cohort_version_id = :v"
    return graph.db.sql(query.format(members=base), v=cohort.version_id)


# -- table by table against the graph -----------------------------------------------------------------------


def test_patients_table_is_the_members_with_their_demographics(graph: Graph, main: Exported) -> None:
    members = graph.db.members(main.cohort)
    assert len(members) == 60 + 83 + 51  # every patient of the three projects
    table = main.table("patients.parquet")
    cases = table.column("case_id").to_pylist()
    assert len(cases) == len(set(cases)) == table.num_rows
    assert set(cases) == set(members)
    assert cases == sorted(cases)  # fixed row order

    expected = {
        str(r[0]): tuple(r[1:])
        for r in _member_rows(
            graph,
            main.cohort,
            "SELECT p.case_id::text, p.submitter_id, pr.project_id, d.sex, d.vital_status, d.race, d.age_at_index, "
            "d.days_to_death FROM {members} JOIN project pr ON pr.id = p.project_id "
            "LEFT JOIN demographic d ON d.patient_id = p.id AND d.retired_release_id IS NULL",
        )
    }
    got = {
        r["case_id"]: (
            r["submitter_id"],
            r["project_id"],
            r["sex"],
            r["vital_status"],
            r["race"],
            r["age_at_index"],
            r["days_to_death"],
        )
        for r in table.to_pylist()
    }
    assert got == expected
    assert collections.Counter(v[1] for v in got.values()) == {
        "TCGA-LIHC": 83,
        "TCGA-LUAD": 60,
        "TCGA-CHOL": 51,
    }
    assert {v[3] for v in got.values()} >= {"Alive", "Dead"}

    idc = collections.defaultdict(list)
    for case_id, ns, ext in _member_rows(
        graph,
        main.cohort,
        "SELECT p.case_id::text, l.namespace, l.external_id FROM {members} "
        "JOIN identity_link l ON l.patient_id = p.id AND l.commons = 'idc' ORDER BY 2, 3",
    ):
        idc[case_id].append(f"{ns}/{ext}")
    assert {r["case_id"]: r["idc_patient_ids"] for r in table.to_pylist()} == {
        c: idc.get(c, []) for c in members
    }


def _has(graph: Graph, cohort: Cohort, condition: str, scope_filter: str = "true") -> set[str]:
    """Members with a live GDC file (``f``) matching ``condition`` or, for ``series:MOD``, a live IDC series."""
    if condition.startswith("series:"):
        rows = _member_rows(
            graph,
            cohort,
            "SELECT DISTINCT p.case_id::text FROM {members} JOIN identity_link l ON l.patient_id = p.id "
            "AND l.commons = 'idc' JOIN idc_patient ip ON ip.collection_id = l.namespace "
            "AND ip.patient_id = l.external_id AND ip.retired_release_id IS NULL "
            "JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.retired_release_id IS NULL "
            f"WHERE s.modality = '{condition.removeprefix('series:')}'",
        )
    else:
        rows = _member_rows(
            graph,
            cohort,
            "SELECT DISTINCT p.case_id::text FROM {members} JOIN file_patient fp ON fp.patient_id = p.id "
            "JOIN data_file f ON f.id = fp.file_id AND f.retired_release_id IS NULL "
            f"WHERE ({condition}) AND ({scope_filter})",
        )
    return {str(r[0]) for r in rows}


def _mask(exported: Exported, column: str) -> set[str]:
    return {r["case_id"] for r in exported.rows("patients.parquet", "case_id", column) if r[column]}


RNASEQ = "f.experimental_strategy = 'RNA-Seq' OR f.data_type = 'Gene Expression Quantification'"


def test_modality_masks_match_the_graph(graph: Graph, main: Exported) -> None:
    slide = _has(graph, main.cohort, "f.is_slide") | _has(graph, main.cohort, "series:SM")
    assert _mask(main, "has_slide") == slide
    assert _mask(main, "has_mr") == _has(graph, main.cohort, "series:MR")
    assert _mask(main, "has_ct") == _has(graph, main.cohort, "series:CT")
    assert _mask(main, "has_rnaseq") == _has(graph, main.cohort, RNASEQ)
    with_embeddings = {
        str(r[0])
        for r in _member_rows(
            graph,
            main.cohort,
            "SELECT DISTINCT p.case_id::text FROM {members} JOIN embedding e ON e.patient_id = p.id",
        )
    }
    assert len(with_embeddings) == 20
    assert _mask(main, "has_embedding") == with_embeddings
    assert _mask(main, "has_emb_test_enc_v1") == with_embeddings
    # the masks are not trivially all true or all false
    for column in ("has_slide", "has_mr", "has_rnaseq"):
        assert 0 < len(_mask(main, column)) < len(graph.db.members(main.cohort)), column


def test_survival_columns_match_survival_data(graph: Graph, main: Exported) -> None:
    members = graph.db.members(main.cohort)
    with graph.db.connect() as conn:
        data = survival_data(conn, list(members.values()))
    records = {str(r.case_id): r for r in data.records}
    assert len(records) > 100
    reasons: collections.Counter[str] = collections.Counter()
    for row in main.table("patients.parquet").to_pylist():
        record = records.get(row["case_id"])
        if record is None:
            assert row["os_time_days"] is None and row["os_event"] is None
            reasons[row["os_excluded_reason"]] += 1
        else:
            assert (row["os_time_days"], row["os_event"], row["os_excluded_reason"]) == (
                record.time_days,
                record.event,
                None,
            )
    assert reasons == {k: n for k, n in data.excluded.items() if n}
    assert "survival" in main.manifest["rules"]


@pytest.mark.parametrize("name", sorted(CLINICAL))
def test_clinical_table_holds_the_live_rows_of_members(graph: Graph, main: Exported, name: str) -> None:
    table, key = CLINICAL[name]
    expected = sorted(
        (str(c), str(k))
        for c, k in _member_rows(
            graph,
            main.cohort,
            f"SELECT p.case_id::text, t.{key}::text FROM {{members}} JOIN {table} t ON t.patient_id = p.id "
            "WHERE t.retired_release_id IS NULL",
        )
    )
    got = [(r["case_id"], r[key]) for r in main.rows(f"{name}.parquet", "case_id", key)]
    assert got == expected  # same rows, ordered by case then record id
    assert len(got) > 50
    assert graph.retired[table] not in {k for _, k in got}
    assert main.manifest["row_counts"][f"{name}.parquet"] == len(expected)


def test_treatments_name_their_diagnosis_by_uuid(graph: Graph, main: Exported) -> None:
    expected = {
        str(t): (str(d) if d else None)
        for t, d in _member_rows(
            graph,
            main.cohort,
            "SELECT t.treatment_id::text, dx.diagnosis_id::text FROM {members} JOIN treatment t "
            "ON t.patient_id = p.id AND t.retired_release_id IS NULL LEFT JOIN diagnosis dx ON dx.id = t.diagnosis_id",
        )
    }
    got = {
        r["treatment_id"]: r["diagnosis_id"]
        for r in main.rows("treatments.parquet", "treatment_id", "diagnosis_id")
    }
    assert got == expected
    assert any(v is not None for v in got.values())


def test_files_table_matches_the_graph(graph: Graph, main: Exported) -> None:
    rows = main.table("files.parquet").to_pylist()
    by_source = collections.Counter(r["source"] for r in rows)
    assert set(by_source) <= {"gdc", "idc", "pdc"}

    gdc_expected = {
        (str(c), str(f)): (md5, size)
        for c, f, md5, size in _member_rows(
            graph,
            main.cohort,
            "SELECT p.case_id::text, f.file_id::text, f.md5sum, f.file_size FROM {members} "
            "JOIN file_patient fp ON fp.patient_id = p.id JOIN data_file f ON f.id = fp.file_id "
            "WHERE f.retired_release_id IS NULL",
        )
    }
    gdc_got = {
        (r["case_id"], r["file_id"]): (r["md5sum"], r["file_size"]) for r in rows if r["source"] == "gdc"
    }
    assert gdc_got == gdc_expected
    assert graph.retired["data_file"] not in {f for _, f in gdc_got}
    assert graph.controlled_files <= {f for _, f in gdc_got}  # everything-scope sees controlled files

    idc_expected = {
        (str(c), str(s))
        for c, s in _member_rows(
            graph,
            main.cohort,
            "SELECT p.case_id::text, s.series_instance_uid FROM {members} JOIN identity_link l "
            "ON l.patient_id = p.id AND l.commons = 'idc' JOIN idc_patient ip ON ip.collection_id = l.namespace "
            "AND ip.patient_id = l.external_id AND ip.retired_release_id IS NULL "
            "JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.retired_release_id IS NULL",
        )
    }
    idc_got = [(r["case_id"], r["file_id"]) for r in rows if r["source"] == "idc"]
    assert len(idc_got) == len(set(idc_got)) == len(idc_expected) > 1000
    assert set(idc_got) == idc_expected
    assert graph.retired["imaging_series"] not in {s for _, s in idc_got}
    assert all(r["url"].startswith("s3://") for r in rows if r["source"] == "idc")

    # shared_by_patients counts the export's patients holding the file; the shared file is held by three
    holders = collections.Counter((r["source"], r["file_id"]) for r in rows)
    assert all(r["shared_by_patients"] == holders[(r["source"], r["file_id"])] for r in rows)
    assert {r["case_id"] for r in rows if r["file_id"] == graph.shared_file} == graph.shared_patients
    assert main.manifest["multi_patient_files"] == 1
    assert main.manifest["row_counts"]["files.parquet"] == len(rows) == by_source["gdc"] + by_source["idc"]


def test_download_manifests_list_the_distinct_files(graph: Graph, main: Exported) -> None:
    files = main.table("files.parquet").to_pylist()
    gdc_ids = sorted({r["file_id"] for r in files if r["source"] == "gdc"})
    lines = (main.path / "gdc_manifest.txt").read_text().splitlines()
    assert lines[0].split("\t") == ["id", "filename", "md5", "size", "state"]
    entries = [line.split("\t") for line in lines[1:]]
    assert [e[0] for e in entries] == gdc_ids  # one line per distinct file (the shared one once)
    expected = {  # gdc-client's columns; unknown md5 or size are empty
        str(f): (name, md5 or "", "" if size is None else str(size))
        for f, name, md5, size in graph.db.sql(
            "SELECT file_id::text, file_name, md5sum, file_size FROM data_file WHERE file_id::text = ANY(:ids)",
            ids=gdc_ids,
        )
    }
    assert {e[0]: (e[1], e[2], e[3]) for e in entries} == expected
    assert sum(len(e[2]) == 32 and int(e[3]) > 0 for e in entries if e[3]) > 10

    urls = sorted(
        {
            str(u)
            for (u,) in _member_rows(
                graph,
                main.cohort,
                "SELECT s.series_aws_url FROM {members} JOIN identity_link l ON l.patient_id = p.id "
                "AND l.commons = 'idc' JOIN idc_patient ip ON ip.collection_id = l.namespace "
                "AND ip.patient_id = l.external_id AND ip.retired_release_id IS NULL "
                "JOIN imaging_series s ON s.idc_patient_id = ip.id AND s.retired_release_id IS NULL",
            )
        }
    )
    commands = (main.path / "idc_manifest.s5cmd").read_text().splitlines()
    assert commands == [f"cp {u} ." for u in urls]
    assert all(c.startswith("cp s3://") and c.endswith(" .") for c in commands)


def test_manifest_records_every_file_with_its_hash_and_the_provenance(graph: Graph, main: Exported) -> None:
    m = main.manifest
    listed = {f["path"]: f for f in m["files"]}
    on_disk = {str(p.relative_to(main.path)) for p in main.path.rglob("*") if p.is_file()}
    assert on_disk == set(listed) | {"manifest.json"}
    for path, entry in listed.items():
        data = (main.path / path).read_bytes()
        assert entry["size"] == len(data), path
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), path
        if path.endswith(".parquet"):
            assert (
                entry["rows"] == pq.ParquetFile(main.path / path).metadata.num_rows == m["row_counts"][path]
            )
        elif path.endswith(".txt"):  # gdc-client manifest: rows are files, the header line is not one
            assert entry["rows"] == len(data.decode().splitlines()) - 1 == m["row_counts"][path]
        elif path.endswith(".s5cmd"):
            assert entry["rows"] == len(data.decode().splitlines()) == m["row_counts"][path]

    members = graph.db.members(main.cohort)
    with graph.db.factory() as s:
        version = saved.version(s, main.cohort.id, graph.alice, scope=Scope.everything())
    assert m["cohort"]["id"] == main.cohort.id and m["cohort"]["version"] == version.version
    assert m["cohort"]["size"] == len(members) == version.size
    assert m["cohort"]["member_hash"] == version.member_hash == saved.member_hash(list(members))
    assert m["cohort"]["definition"] == {"filters": project_filter(*PROJECTS)}
    assert m["releases"] == version.releases
    assert {r["source"] for r in m["releases"]} >= {"gdc", "idc"}
    assert m["principal"] == {
        "name": "alice",
        "role": "curator",
        "principal": "local",
        "unrestricted": True,
        "granted_projects": [],
    }
    assert m["options"] == ExportOptions().to_json()
    assert m["export_schema_version"] == EXPORT_SCHEMA_VERSION
    assert sum(m["splits"].values()) == len(members)
    assert m["embeddings"] == [
        {
            "modality": "slide",
            "model": EMB_MODEL,
            "dim": EMB_DIM,
            "path": "embeddings/slide/test-enc_v1.parquet",
            "rows": 21,
        }
    ]

    row = graph.db.export_row(main.result.export_id)
    assert row.status == "succeeded" and row.error is None and row.finished_at is not None
    assert row.manifest == m
    assert row.progress == {"stage": "published", "done": 1, "total": 1}
    assert main.result.destination == str(main.path)


def test_every_parquet_file_carries_the_schema_version_and_dictionary_categoricals(main: Exported) -> None:
    parquet = sorted(main.path.rglob("*.parquet"))
    assert len(parquet) == 9  # files, splits, patients, 5 clinical tables, one embedding set
    for path in parquet:
        schema = pq.read_schema(path)
        assert schema.metadata[b"oncograph.schema_version"] == EXPORT_SCHEMA_VERSION.encode(), path
        assert schema.metadata[b"oncograph.table"], path
    patients = pq.read_schema(main.path / "patients.parquet")
    for column in ("project_id", "program", "sex", "vital_status", "stage", "split"):
        assert pa.types.is_dictionary(patients.field(column).type), column
    for column in ("case_id", "submitter_id"):
        assert patients.field(column).type == pa.string(), column
    assert patients.field("idc_patient_ids").type == pa.list_(pa.string())
    files = pq.read_schema(main.path / "files.parquet")
    for column in ("source", "data_type", "access", "modality", "collection_id"):
        assert pa.types.is_dictionary(files.field(column).type), column
    assert files.field("file_id").type == pa.string()
    assert pa.types.is_dictionary(pq.read_schema(main.path / "splits.parquet").field("split").type)
    assert pa.types.is_dictionary(
        pq.read_schema(main.path / "diagnoses.parquet").field("primary_diagnosis").type
    )
    # dictionary columns read back with their values
    assert set(main.table("patients.parquet").column("project_id").to_pylist()) == set(PROJECTS)


def test_embeddings_table_holds_the_stored_vectors(graph: Graph, main: Exported) -> None:
    table = main.table("embeddings/slide/test-enc_v1.parquet")
    assert table.schema.field("vector").type == pa.list_(pa.float32(), EMB_DIM)
    rows = table.to_pylist()
    assert graph.outsider_object not in {r["object_id"] for r in rows}
    assert {r["object_id"] for r in rows} == set(graph.vectors) - {graph.outsider_object}
    owner = {
        str(o): str(c)
        for o, c in graph.db.sql(
            "SELECT e.object_id, p.case_id::text FROM embedding e JOIN patient p ON p.id = e.patient_id"
        )
    }
    for r in rows:
        assert r["case_id"] == owner[r["object_id"]]
        np.testing.assert_array_equal(
            np.asarray(r["vector"], dtype=np.float32), graph.vectors[r["object_id"]]
        )
        assert (r["model"], r["modality"], r["model_version"]) == (EMB_MODEL, "slide", "1")
    assert [(r["case_id"], r["object_id"]) for r in rows] == sorted(
        (r["case_id"], r["object_id"]) for r in rows
    )


# -- Croissant ----------------------------------------------------------------------------------------------


def test_croissant_validates_and_loads_records(main: Exported) -> None:
    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=main.path / "croissant.json")  # raises on validation errors
    assert not dataset.metadata.ctx.issues.errors
    ids = {rs.id for rs in dataset.metadata.record_sets}
    assert {"patients", "files", "splits", "diagnoses", "samples", "embeddings_slide_test-enc_v1"} <= ids

    patients = list(dataset.records("patients"))
    assert len(patients) == main.manifest["row_counts"]["patients.parquet"]
    assert [r["patients/case_id"].decode() for r in patients] == main.table("patients.parquet").column(
        "case_id"
    ).to_pylist()
    first = patients[0]
    assert isinstance(first["patients/has_slide"], bool | np.bool_)
    diagnoses = list(dataset.records("diagnoses"))
    assert len(diagnoses) == main.manifest["row_counts"]["diagnoses.parquet"]
    vectors = list(dataset.records("embeddings_slide_test-enc_v1"))
    assert len(vectors) == 21 and all(
        len(r["embeddings_slide_test-enc_v1/vector"]) == EMB_DIM for r in vectors
    )

    doc = json.loads((main.path / "croissant.json").read_text())
    hashes = {f["contentUrl"]: f["sha256"] for f in doc["distribution"]}
    assert hashes == {
        f["path"]: f["sha256"] for f in main.manifest["files"] if f["path"].endswith(".parquet")
    }
    assert main.manifest["cohort"]["member_hash"] in doc["description"]


# -- splits ----------------------------------------------------------------------------------------------


def _splits(exported: Exported) -> dict[str, str]:
    return {r["case_id"]: r["split"] for r in exported.rows("splits.parquet", "case_id", "split")}


def _check_proportions(exported: Exported, ratios: tuple[float, float, float]) -> int:
    """Within each stratum (a group's stratum is its first patient's) of 10+ patients, every split holds its
    share within 2 patients. Returns how many strata were checked."""
    rows = exported.table("splits.parquet").to_pylist()
    stratum_of = {r["case_id"]: r["stratum"] for r in rows}
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in rows:
        counts[stratum_of[r["group"]]][r["split"]] += 1
    checked = 0
    for stratum, per_split in counts.items():
        n = sum(per_split.values())
        if n < 10:
            continue
        checked += 1
        for split, ratio in zip(("train", "val", "test"), ratios, strict=True):
            assert abs(per_split[split] - ratio * n) <= 2, (stratum, dict(per_split))
    return checked


def test_splits_are_patient_level_and_leak_free(graph: Graph, main: Exported) -> None:
    members = graph.db.members(main.cohort)
    split_rows = main.table("splits.parquet").to_pylist()
    assert len(split_rows) == len({r["case_id"] for r in split_rows}) == len(members)
    split_of = _splits(main)
    assert set(split_of) == set(members)
    assert set(split_of.values()) == {"train", "val", "test"}
    # patients.parquet carries the same split
    assert {r["case_id"]: r["split"] for r in main.rows("patients.parquet", "case_id", "split")} == split_of
    assert collections.Counter(split_of.values()) == main.manifest["splits"]

    # no sample and no file belongs to patients of two splits
    for name, key in (("samples.parquet", ("sample_id",)), ("files.parquet", ("source", "file_id"))):
        seen: dict[tuple[Any, ...], set[str]] = collections.defaultdict(set)
        for r in main.table(name).to_pylist():
            seen[tuple(r[k] for k in key)].add(split_of[r["case_id"]])
        assert seen and all(len(s) == 1 for s in seen.values()), name
    # the three patients sharing a file (of three projects, so three strata) are one group in one split
    groups = {r["case_id"]: r["group"] for r in split_rows}
    assert len({groups[c] for c in graph.shared_patients}) == 1
    assert groups[min(graph.shared_patients)] == min(graph.shared_patients)
    assert len({split_of[c] for c in graph.shared_patients}) == 1
    assert collections.Counter(groups.values()).most_common(1)[0][1] == 3

    # strata are the default fields' values of each patient
    patients = {r["case_id"]: r for r in main.table("patients.parquet").to_pylist()}
    for r in split_rows:
        p = patients[r["case_id"]]
        assert r["stratum"] == f"{p['project_id']} × {p['vital_status']}"
    assert _check_proportions(main, (0.7, 0.15, 0.15)) >= 4


@pytest.fixture(scope="module")
def reseeded(graph: Graph, export_tmp: Callable[[str], Path]) -> Exported:
    return _export(graph, graph.main, export_tmp("seed1"), options=ExportOptions(seed=1))


def test_seed_decides_the_splits(main: Exported, reseeded: Exported) -> None:
    a, b = _splits(main), _splits(reseeded)
    assert set(a) == set(b)
    changed = sum(a[c] != b[c] for c in a)
    assert changed > 20  # another seed, another assignment ...
    assert _check_proportions(reseeded, (0.7, 0.15, 0.15)) >= 4  # ... with the same proportions
    assert reseeded.manifest["options"]["seed"] == 1
    assert collections.Counter(a.values()) == collections.Counter(b.values())


def test_custom_split_fields_and_ratios(graph: Graph, export_tmp: Callable[[str], Path]) -> None:
    options = ExportOptions(split_by=("sex",), ratios=(0.5, 0.25, 0.25), seed=3)
    exported = _export(graph, graph.main, export_tmp("by-sex"), options=options)
    rows = exported.table("splits.parquet").to_pylist()
    sex = {r["case_id"]: r["sex"] for r in exported.rows("patients.parquet", "case_id", "sex")}
    assert all(r["stratum"] == str(sex[r["case_id"]]) for r in rows)
    assert {r["stratum"] for r in rows} >= {"male", "female"}
    assert _check_proportions(exported, (0.5, 0.25, 0.25)) >= 2
    assert exported.manifest["options"] == {
        "split_by": ["sex"],
        "seed": 3,
        "ratios": [0.5, 0.25, 0.25],
        "compression": "zstd",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"split_by": ("nope",)},
        {"split_by": ("project_id", "days_to_death")},
        {"ratios": (0.7, 0.2, 0.2)},
        {"ratios": (0.5, 0.5)},
        {"ratios": (1.2, -0.1, -0.1)},
        {"compression": "lz77"},
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as err:
        ExportOptions(**kwargs)
    assert str(err.value)
    if "split_by" in kwargs:
        assert all(f in err.value.hint for f in STRATIFY_FIELDS)


def test_bad_options_from_json_and_destinations_are_rejected(graph: Graph, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        ExportOptions.from_json({"ratios": [0.9, 0.2, 0.1]})
    with pytest.raises(ValidationError):
        ExportOptions.from_json({"split_by": ["favourite_colour"]})
    for destination in ("http://example.org/x", "s3://bucket-only", "s3:///no-bucket/x", "gs://b/x"):
        with pytest.raises(ValidationError):
            graph.db.queue(graph.chol, destination)
    viewer = graph.db.principal("victor", "viewer")
    with pytest.raises(PermissionDeniedError):
        graph.db.queue(graph.chol, tmp_path / "x", principal=viewer)


# -- determinism ----------------------------------------------------------------------------------------------


def test_two_exports_of_the_same_version_are_byte_identical(
    graph: Graph, main: Exported, export_tmp: Callable[[str], Path]
) -> None:
    again = _export(graph, graph.main, export_tmp("again"))
    assert again.result.export_id != main.result.export_id
    first = {f["path"]: f["sha256"] for f in main.manifest["files"]}
    second = {f["path"]: f["sha256"] for f in again.manifest["files"]}
    assert first.keys() == second.keys()
    data_files = [p for p in first if p.endswith((".parquet", ".txt", ".s5cmd"))]
    assert len(data_files) == 11
    for path in data_files:
        assert first[path] == second[path], path
        assert _sha256(main.path / path) == _sha256(again.path / path), path
    assert again.manifest["created_at"] != main.manifest["created_at"]


# -- access ----------------------------------------------------------------------------------------------


def test_scope_without_grants_sees_no_controlled_project_and_no_controlled_file(
    graph: Graph, export_tmp: Callable[[str], Path]
) -> None:
    bob = graph.db.principal("bob", "curator")
    scope = graph.db.scope(bob)
    cohort = graph.db.cohort(project_filter(*PROJECTS), bob, scope)
    exported = _export(graph, cohort, export_tmp("bob"), scope=scope)

    patients = exported.table("patients.parquet").to_pylist()
    assert {p["project_id"] for p in patients} == {"TCGA-LIHC", "TCGA-LUAD"}  # TCGA-CHOL is controlled
    assert len(patients) == 83 + 60
    for name in CLINICAL:
        cases = set(exported.table(f"{name}.parquet").column("case_id").to_pylist())
        assert cases <= {p["case_id"] for p in patients}, name

    files = exported.table("files.parquet").to_pylist()
    gdc = {r["file_id"] for r in files if r["source"] == "gdc"}
    assert gdc and not gdc & graph.controlled_files
    assert all(r["access"] != "controlled" for r in files)
    manifest_ids = {
        line.split("\t")[0] for line in (exported.path / "gdc_manifest.txt").read_text().splitlines()[1:]
    }
    assert manifest_ids == gdc
    # the masks follow what the scope may see
    assert _mask(exported, "has_rnaseq") == _has(
        graph, cohort, RNASEQ, "f.access IS NULL OR f.access <> 'controlled'"
    )
    assert not _mask(exported, "has_rnaseq") & graph.controlled_patients
    assert exported.manifest["principal"] == {
        "name": "bob",
        "role": "curator",
        "principal": "bob",
        "unrestricted": False,
        "granted_projects": [],
    }


def test_a_grant_shows_the_controlled_project_and_files(
    graph: Graph, export_tmp: Callable[[str], Path]
) -> None:
    carol = graph.db.principal("carol", "curator", grants=("TCGA-CHOL", "TCGA-LIHC"))
    scope = graph.db.scope(carol)
    cohort = graph.db.cohort(project_filter(*PROJECTS), carol, scope)
    exported = _export(graph, cohort, export_tmp("carol"), scope=scope)
    patients = exported.table("patients.parquet")
    assert set(patients.column("project_id").to_pylist()) == set(PROJECTS)
    files = exported.table("files.parquet").to_pylist()
    assert graph.controlled_files <= {r["file_id"] for r in files if r["source"] == "gdc"}
    assert graph.controlled_patients <= _mask(exported, "has_rnaseq")
    assert exported.manifest["principal"]["granted_projects"] == ["TCGA-CHOL", "TCGA-LIHC"]
    assert exported.manifest["principal"]["unrestricted"] is False


def test_exporting_a_shared_cohort_without_the_grant_leaks_no_controlled_patient(
    graph: Graph, export_tmp: Callable[[str], Path]
) -> None:
    admin = graph.db.principal("root", "admin", grants=("TCGA-CHOL",))
    shared = graph.db.cohort(
        project_filter("TCGA-CHOL", "TCGA-LUAD"), admin, graph.db.scope(admin), shared=True
    )
    dave = graph.db.principal("dave", "curator")
    path = export_tmp("dave")
    try:
        exported = _export(graph, shared, path, scope=graph.db.scope(dave), principal=dave)
    except (PermissionDeniedError, NotFoundError):
        return  # refusing the export is a fix too (under dave's scope the cohort does not exist)
    projects = set(exported.table("patients.parquet").column("project_id").to_pylist())
    assert "TCGA-CHOL" not in projects
    chol = {str(c) for (c,) in _member_rows(graph, shared, "SELECT p.case_id::text FROM {members}")}
    assert not set(exported.table("diagnoses.parquet").column("case_id").to_pylist()) & chol


# -- atomic publish --------------------------------------------------------------------------------------


def _leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def test_failure_mid_export_publishes_nothing_and_a_rerun_succeeds(
    graph: Graph, export_tmp: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = export_tmp("failing")
    export_id = graph.db.queue(graph.chol, path)
    written: list[str] = []
    real = writer.Writer.parquet

    def failing(self: Any, relative: str, *args: Any, **kwargs: Any) -> Any:
        if written:
            raise RuntimeError(f"disk on fire while writing {relative}")
        record = real(self, relative, *args, **kwargs)
        written.append(relative)
        assert any(p.name.startswith(f".{path.name}.staging-") for p in path.parent.iterdir())
        return record

    monkeypatch.setattr(writer.Writer, "parquet", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        run_export(graph.db.factory, export_id)
    assert written == ["files.parquet"]
    assert not path.exists()
    assert _leftovers(path) == []
    row = graph.db.export_row(export_id)
    assert row.status == "failed"
    assert row.error == "RuntimeError: disk on fire while writing splits.parquet"
    assert row.finished_at is not None and row.manifest is None
    assert row.progress["stage"] == "files"

    monkeypatch.setattr(writer.Writer, "parquet", real)
    result = run_export(graph.db.factory, export_id)
    assert result.manifest["row_counts"]["patients.parquet"] == 51
    row = graph.db.export_row(export_id)
    assert (row.status, row.error) == ("succeeded", None)
    assert (path / "manifest.json").is_file() and _leftovers(path) == []


def test_killed_export_publishes_nothing_and_the_next_export_succeeds(
    graph: Graph, export_tmp: Callable[[str], Path], kill_export: Callable[..., None]
) -> None:
    path = export_tmp("killed")
    export_id = graph.db.queue(graph.chol, path)
    kill_export(graph.db.url, export_id, "patients")
    assert not path.exists()
    staging = [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.staging-")]
    assert len(staging) == 1  # the dead process's files, never published
    assert {p.name for p in staging[0].iterdir()} >= {"files.parquet", "splits.parquet", "patients.parquet"}
    assert not (staging[0] / "manifest.json").exists()
    row = graph.db.export_row(export_id)
    assert row.status == "running" and row.progress["stage"] == "patients"

    result = graph.db.export(graph.chol, path)
    assert (path / "manifest.json").is_file()
    assert _leftovers(path) == []  # the stale staging folder was removed
    for entry in result.manifest["files"]:
        assert _sha256(path / entry["path"]) == entry["sha256"]


def test_existing_export_is_replaced_only_with_overwrite(
    graph: Graph, export_tmp: Callable[[str], Path]
) -> None:
    path = export_tmp("conflict")
    graph.db.export(graph.chol, path)
    before = (path / "manifest.json").read_bytes()

    with pytest.raises(ConflictError, match="already holds an export"):
        graph.db.queue(graph.main, path)  # refused when queued: no export record
    assert (path / "manifest.json").read_bytes() == before
    assert graph.db.sql("SELECT count(*) FROM export WHERE destination = :d", d=str(path))[0][0] == 1
    assert _leftovers(path) == []

    result = graph.db.export(graph.main, path, options=ExportOptions(overwrite=True))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["cohort"]["id"] == graph.main.id == result.manifest["cohort"]["id"]
    assert pq.read_metadata(path / "patients.parquet").num_rows == 194
    assert _leftovers(path) == []


def test_failed_publish_over_an_existing_export_keeps_the_old_one(
    graph: Graph, export_tmp: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = export_tmp("replace")
    graph.db.export(graph.chol, path)
    before = (path / "manifest.json").read_bytes()
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if ".staging-" in str(src):
            raise OSError("simulated crash while publishing")
        real_rename(src, dst)

    monkeypatch.setattr(storage.os, "rename", rename)
    with pytest.raises(OSError, match="simulated crash"):
        graph.db.export(graph.main, path, options=ExportOptions(overwrite=True))
    monkeypatch.undo()
    assert (path / "manifest.json").read_bytes() == before  # the previous export is still published
    assert _leftovers(path) == []
