"""Seeded generator that SCALES the real sample graph to N patients, set-based in SQL (benchmarks only).

It never invents a value: every new row is a CLONE of a row of the real sample graph (tests/support/
sample_graph.py: the bundled real GDC, IDC and PDC data). What changes per clone:

- keys: new surrogate ids; new UUIDs ``md5('<seed>:<table>:<copy>:<template uuid>')::uuid``; new DICOM
  UIDs and IDC PatientIDs / submitter ids carry the copy suffix ``-SYN<copy>`` (``.SYN<copy>`` for DICOM
  UIDs), so a synthetic row can never be mistaken for a real one;
- the parent links, re-pointed to the clone's own parents.

Patients: clone number ``i`` (0-based) copies the real live patient picked by ``md5('<seed>:tmpl:<i>')`` (so
the project mix, clinical values and their correlations are the real ones), with its demographic,
diagnoses (+ treatments, pathology details), follow-ups, exposures, family histories, samples, identity
links, and, for an IDC link, the linked IDC patient with its DICOM studies and series (so IDC modalities stay
one IDC patient per GDC patient, as in the real graph).

Files: the real graph has far fewer files per patient than GDC (the sample carries ~0.13), so clone ``i`` gets
``1 + md5('<seed>:nfiles:<i>') % (2F - 1)`` files (mean ``F``): first its template's own files, then real
file rows drawn (seeded) from all live ``data_file`` rows; each is a new ``data_file`` row (new UUID, the real
row's values) linked to the clone by ``file_patient``. ``file_sample`` and portions/analytes/aliquots/slides
are not cloned (no cohort field reads them).

Lineage: ``source_document_id`` and the release ids stay the template row's (the clone points to the document
its values came from; valid foreign keys, though that document names the real entity).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, text

from oncograph.db.models import Base

SUFFIX = "'-SYN' || {i}"


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _h(seed: int, tag: str, *parts: str) -> str:
    """A non-negative 60-bit integer hash of ``seed:tag:parts`` (SQL)."""
    inner = " || ':' || ".join([f"'{seed}:{tag}'", *[f"({p})::text" for p in parts]])
    return f"('x' || substr(md5({inner}), 1, 15))::bit(60)::bigint"


def _uuid(seed: int, tag: str, *parts: str) -> str:
    inner = " || ':' || ".join([f"'{seed}:{tag}'", *[f"({p})::text" for p in parts]])
    return f"md5({inner})::uuid"


@dataclass
class ScaleReport:
    seed: int
    real_patients: int
    clones: int
    files_per_patient: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "generator": "bench/scale_graph.py (seeded clones of the real sample graph)",
            "seed": self.seed,
            "real_patients": self.real_patients,
            "synthetic_patients": self.clones,
            "files_per_patient": self.files_per_patient,
            "rows_inserted": self.rows,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


class _Cloner:
    def __init__(self, conn: Connection, seed: int, report: ScaleReport) -> None:
        self.conn = conn
        self.seed = seed
        self.report = report

    def run(self, sql: str, **params: Any) -> int:
        return int(self.conn.execute(text(sql), params).rowcount or 0)

    def scalar(self, sql: str) -> Any:
        return self.conn.execute(text(sql)).scalar_one()

    def base(self, table: str) -> int:
        return int(self.scalar(f"SELECT coalesce(max(id), 0) FROM {table}"))

    def insert(self, table: str, map_table: str, overrides: dict[str, str], joins: str = "") -> int:
        """``INSERT INTO table SELECT <template row with overrides> FROM table t JOIN map x ON ...``."""
        cols = [c.name for c in _table(table).columns if c.computed is None]
        exprs = [overrides.get(c, f"t.{c}") for c in cols]
        start = time.perf_counter()
        n = self.run(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
            f"FROM {table} t JOIN {map_table} x ON x.old_id = t.id {joins}"
        )
        self.report.rows[table] = self.report.rows.get(table, 0) + n
        self.report.seconds[table] = self.report.seconds.get(table, 0.0) + time.perf_counter() - start
        return n

    def child_map(self, table: str, parent_map: str, parent_col: str, where: str = "") -> str:
        """Map ``(template row, copy) -> new id`` for the live rows of ``table`` under cloned parents."""
        name = f"bench_map_{table}"
        base = self.base(table)
        self.run(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT t.id AS old_id, p.i, p.new_id AS parent_new, "
            f"{base} + row_number() OVER (ORDER BY p.i, t.id) AS new_id "
            f"FROM {table} t JOIN {parent_map} p ON p.old_id = t.{parent_col} "
            f"WHERE t.retired_release_id IS NULL {where}"
        )
        self.run(f"CREATE INDEX ON {name} (old_id, i)")
        self.run(f"ANALYZE {name}")
        return name

    def keyed_child(self, table: str, *, extra: dict[str, str] | None = None, joins: str = "") -> None:
        """A GDC-keyed child of patient: new id, UUID key, patient, submitter id with the copy suffix."""
        m = self.child_map(table, "bench_pmap", "patient_id")
        key = f"{table}_id"
        overrides = {
            "id": "x.new_id",
            "patient_id": "x.parent_new",
            key: _uuid(self.seed, table, "x.i", f"t.{key}"),
            "submitter_id": f"t.submitter_id || {SUFFIX.format(i='x.i')}",
            **(extra or {}),
        }
        self.insert(table, m, overrides, joins)

    def finish_sequences(self, tables: list[str]) -> None:
        for table in tables:
            self.run(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )


def scale(engine: Engine, *, patients: int, files_per_patient: int, seed: int) -> ScaleReport:
    """Clone real patients until the graph has ``patients`` live patients (one transaction), then VACUUM
    ANALYZE. Returns what was inserted and how long each step took."""
    if files_per_patient < 1:
        raise ValueError("files_per_patient must be >= 1")
    total_start = time.perf_counter()
    with engine.begin() as conn:
        real = int(
            conn.execute(text("SELECT count(*) FROM patient WHERE retired_release_id IS NULL")).scalar_one()
        )
        clones = max(0, patients - real)
        report = ScaleReport(seed, real, clones, files_per_patient)
        if clones and real:
            _clone_all(conn, report)
    report.seconds["insert_total"] = time.perf_counter() - total_start
    start = time.perf_counter()
    with engine.begin() as conn:
        # what an ingest's linking step does: the cohort engine reads modalities from this view
        conn.execute(text("REFRESH MATERIALIZED VIEW patient_modality"))
    report.seconds["refresh_patient_modality"] = time.perf_counter() - start
    start = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    report.seconds["vacuum_analyze"] = time.perf_counter() - start
    return report


def _clone_all(conn: Connection, report: ScaleReport) -> None:
    """Every INSERT ... SELECT of the scaling, in the caller's transaction."""
    seed, real, clones = report.seed, report.real_patients, report.clones
    files_per_patient = report.files_per_patient
    c = _Cloner(conn, seed, report)
    c.run("SET LOCAL work_mem = '256MB'")
    c.run("SET LOCAL maintenance_work_mem = '512MB'")
    # Every foreign key of a clone is valid by construction (the template's own references, or parents
    # inserted just before), so skip the per-row RI triggers, as bulk loaders do (needs a superuser,
    # which the embedded server's user is).
    c.run("SET LOCAL session_replication_role = replica")
    # -- patients ------------------------------------------------------------------------------------
    c.run(
        "CREATE TEMP TABLE bench_tmpl ON COMMIT DROP AS SELECT id AS old_id, "
        "(row_number() OVER (ORDER BY case_id) - 1)::int AS t FROM patient WHERE retired_release_id IS NULL"
    )
    pbase = c.base("patient")
    c.run(
        "CREATE TEMP TABLE bench_pmap ON COMMIT DROP AS "
        f"SELECT g.i, tm.old_id AS old_id, {pbase} + g.i + 1 AS new_id "
        f"FROM generate_series(0, {clones - 1}) g(i) "
        f"JOIN bench_tmpl tm ON tm.t = {_h(seed, 'tmpl', 'g.i')} % {real}"
    )
    c.run("CREATE INDEX ON bench_pmap (old_id)")
    c.run("ANALYZE bench_pmap")
    c.insert(
        "patient",
        "bench_pmap",
        {
            "id": "x.new_id",
            "case_id": _uuid(seed, "patient", "x.i"),
            "submitter_id": f"coalesce(t.submitter_id, 'patient') || {SUFFIX.format(i='x.i')}",
        },
    )
    # -- clinical and biospecimen children ------------------------------------------------------------
    for table in ("demographic", "diagnosis", "follow_up", "exposure", "family_history", "sample"):
        c.keyed_child(table)
    for table in ("treatment", "pathology_detail"):
        c.keyed_child(
            table,
            extra={"diagnosis_id": "d.new_id"},
            joins="LEFT JOIN bench_map_diagnosis d ON d.old_id = t.diagnosis_id AND d.i = x.i",
        )
    # -- identity links and the linked IDC patients, studies, series ----------------------------------
    lbase = c.base("identity_link")
    c.run(
        "CREATE TEMP TABLE bench_map_identity_link ON COMMIT DROP AS "
        "SELECT l.id AS old_id, p.i, p.new_id AS parent_new, "
        f"{lbase} + row_number() OVER (ORDER BY p.i, l.id) AS new_id, ip.id AS old_ip "
        "FROM identity_link l JOIN bench_pmap p ON p.old_id = l.patient_id "
        "LEFT JOIN idc_patient ip ON l.commons = 'idc' AND ip.collection_id = l.namespace "
        "AND ip.patient_id = l.external_id AND ip.retired_release_id IS NULL"
    )
    ibase = c.base("idc_patient")
    c.run(
        f"CREATE TEMP TABLE bench_map_idc_patient ON COMMIT DROP AS SELECT old_ip AS old_id, i, "
        f"{ibase} + row_number() OVER (ORDER BY i, old_ip) AS new_id "
        "FROM (SELECT DISTINCT old_ip, i FROM bench_map_identity_link WHERE old_ip IS NOT NULL) s"
    )
    c.run("CREATE INDEX ON bench_map_idc_patient (old_id, i)")
    c.run("ANALYZE bench_map_idc_patient")
    c.insert(
        "idc_patient",
        "bench_map_idc_patient",
        {"id": "x.new_id", "patient_id": f"t.patient_id || {SUFFIX.format(i='x.i')}"},
    )
    c.insert(
        "identity_link",
        "bench_map_identity_link",
        {
            "id": "x.new_id",
            "patient_id": "x.parent_new",
            "external_id": f"CASE WHEN x.old_ip IS NULL THEN t.external_id "
            f"ELSE t.external_id || {SUFFIX.format(i='x.i')} END",
        },
    )
    study = c.child_map("imaging_study", "bench_map_idc_patient", "idc_patient_id")
    c.insert(
        "imaging_study",
        study,
        {
            "id": "x.new_id",
            "idc_patient_id": "x.parent_new",
            "study_instance_uid": "t.study_instance_uid || '.SYN' || x.i",
        },
    )
    series = c.child_map("imaging_series", study, "imaging_study_id")
    c.insert(
        "imaging_series",
        series,
        {
            "id": "x.new_id",
            "imaging_study_id": "x.parent_new",
            "idc_patient_id": "s.parent_new",
            "series_instance_uid": "t.series_instance_uid || '.SYN' || x.i",
            "crdc_series_uuid": f"CASE WHEN t.crdc_series_uuid IS NULL THEN NULL "
            f"ELSE {_uuid(seed, 'series', 'x.i', 't.crdc_series_uuid')} END",
        },
        joins=f"JOIN {study} s ON s.new_id = x.parent_new",
    )
    # -- files -----------------------------------------------------------------------------------------
    c.run(
        "CREATE TEMP TABLE bench_pool ON COMMIT DROP AS "
        "SELECT id AS fid, (row_number() OVER (ORDER BY id) - 1)::int AS k "
        "FROM data_file WHERE retired_release_id IS NULL"
    )
    pool = int(c.scalar("SELECT count(*) FROM bench_pool"))
    c.run(
        "CREATE TEMP TABLE bench_own ON COMMIT DROP AS SELECT fp.patient_id AS old_pid, f.id AS fid, "
        "(row_number() OVER (PARTITION BY fp.patient_id ORDER BY f.id) - 1)::int AS k "
        "FROM file_patient fp JOIN data_file f ON f.id = fp.file_id WHERE f.retired_release_id IS NULL"
    )
    c.run("CREATE INDEX ON bench_pool (k)")
    c.run("CREATE INDEX ON bench_own (old_pid, k)")
    c.run("ANALYZE bench_pool")
    c.run("ANALYZE bench_own")
    fbase = c.base("data_file")
    span = 2 * files_per_patient - 1
    c.run(
        f"CREATE TEMP TABLE bench_map_data_file ON COMMIT DROP AS "
        f"SELECT coalesce(o.fid, p.fid) AS old_id, s.i, s.k, s.pid, "
        f"{fbase} + row_number() OVER (ORDER BY s.i, s.k) AS new_id "
        f"FROM (SELECT m.i, m.old_id, m.new_id AS pid, g.k FROM bench_pmap m "
        f"      CROSS JOIN generate_series(0, {span - 1}) g(k) "
        f"      WHERE g.k < 1 + {_h(seed, 'nfiles', 'm.i')} % {span}) s "
        f"LEFT JOIN bench_own o ON o.old_pid = s.old_id AND o.k = s.k "
        f"JOIN bench_pool p ON p.k = {_h(seed, 'file', 's.i', 's.k')} % {pool}"
    )
    c.insert(
        "data_file",
        "bench_map_data_file",
        {"id": "x.new_id", "file_id": _uuid(seed, "file", "x.i", "x.k")},
    )
    start = time.perf_counter()
    n = c.run("INSERT INTO file_patient (file_id, patient_id) SELECT new_id, pid FROM bench_map_data_file")
    report.rows["file_patient"] = n
    report.seconds["file_patient"] = time.perf_counter() - start
    c.finish_sequences(
        [
            "patient",
            "demographic",
            "diagnosis",
            "follow_up",
            "exposure",
            "family_history",
            "sample",
            "treatment",
            "pathology_detail",
            "identity_link",
            "idc_patient",
            "imaging_study",
            "imaging_series",
            "data_file",
        ]
    )
