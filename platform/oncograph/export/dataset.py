"""The dataset of one export: every table streamed from PostgreSQL into Parquet (and the download manifests and
Croissant), in one database snapshot.

Layout (README / ARCHITECTURE): ``manifest.json`` (written last, by the publish step: the commit record),
``croissant.json``, ``patients.parquet``, long clinical tables, ``files.parquet``, ``gdc_manifest.txt``
(gdc-client), ``idc_manifest.s5cmd`` (s5cmd / idc-index), ``embeddings/<modality>/<model>.parquet``,
``splits.parquet`` and, with ``tiles``, ``tiles/<model>/`` (per-slide HDF5 feature files, a tile-level Parquet
dataset and its slide index: :mod:`oncograph.export.tiles`).

Each table streams from PostgreSQL (``tables.copy_batches``) into a Parquet writer that hashes the bytes as it
writes them, so memory does not grow with the cohort. Row order is fixed (case UUID, then record UUID) and no
timestamp is written inside a data file: the same cohort version and options give byte-identical Parquet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute
from sqlalchemy import Connection, text

import oncograph
from oncograph.access import Scope
from oncograph.cohorts.fields import MODALITIES
from oncograph.cohorts.survival import SURVIVAL_RULES, survival_outcomes
from oncograph.export import croissant, splits, tables, tiles, vectors
from oncograph.export.options import ExportOptions, Progress
from oncograph.export.schema import (
    EXPORT_SCHEMA_VERSION,
    FILES_SCHEMA,
    PRIMARY_DIAGNOSIS_RULE,
    SPLITS_SCHEMA,
    embedding_column,
    embeddings_schema,
    patients_schema,
)
from oncograph.export.storage import Staging, safe_part
from oncograph.export.writer import Writer


def write_dataset(
    conn: Connection,
    snapshot: str,
    staging: Staging,
    version_id: int,
    scope: Scope,
    options: ExportOptions,
    info: dict[str, Any],
    report: Progress,
) -> dict[str, Any]:
    """Write every file of the dataset into ``staging`` and return the manifest (not yet written).

    ``conn`` must be in a REPEATABLE READ transaction whose snapshot ``snapshot`` (``pg_export_snapshot()``)
    the second connection of the vector stream imports: every read of the export sees one state."""
    writer = Writer(staging, options.compression)
    total_steps = 10 if options.tiles else 9
    step = 0

    def advance(stage: str) -> None:
        nonlocal step
        step += 1
        report(stage, step, total_steps)

    # 1. patient-level facts computed in SQL, joined in Python (a few values per member)
    member_rows = conn.execute(
        text(
            "SELECT p.id, p.case_id::text FROM cohort_member m JOIN patient p ON p.id = m.patient_id "
            "WHERE m.cohort_version_id = :v"
        ),
        {"v": version_id},
    ).all()
    case_of = {int(pid): str(case) for pid, case in member_rows}
    outcomes = survival_outcomes(conn, list(case_of))
    modalities: dict[int, set[str]] = defaultdict(set)
    for pid, label in conn.execute(tables.modality_pairs_query(version_id, scope)):
        modalities[int(pid)].add(str(label))
    emb_sets = vectors.embedding_sets(conn, version_id, scope)
    models = sorted({m for _, m, _ in emb_sets})
    emb_of: dict[int, set[str]] = defaultdict(set)
    for pid, model in vectors.models_of_patients(conn, version_id, scope):
        emb_of[pid].add(model)
        modalities[pid].add("embedding")
    advance("patients: facts")

    # 2. files first (their sharing defines the split groups)
    shared: dict[tuple[str, str], list[str]] = defaultdict(list)

    def file_batches() -> Iterator[pa.RecordBatch]:
        for batch in tables.copy_batches(conn, tables.files_query(version_id, scope), tables.files_columns()):
            multi = batch.filter(pa.compute.greater(batch.column("shared_by_patients"), 1))
            for case_id, source, file_id in zip(
                multi.column("case_id").to_pylist(),
                multi.column("source").to_pylist(),
                multi.column("file_id").to_pylist(),
                strict=True,
            ):
                shared[(str(source), str(file_id))].append(str(case_id))
            yield batch

    writer.parquet("files.parquet", FILES_SCHEMA, file_batches())
    advance("files")

    # 3. splits
    strata_values: dict[str, str] = {}
    # patients are streamed twice (strata, then the table) to keep memory flat: first pass reads strata only
    split_fields = options.split_by
    for batch in tables.copy_batches(conn, tables.patients_query(version_id), tables.PATIENT_SQL_COLUMNS):
        rows = batch.to_pydict()
        for i, case_id in enumerate(rows["case_id"]):
            pid = int(rows["patient_row"][i])
            values = []
            for f in split_fields:
                if f == "os_event":
                    o = outcomes.get(pid)
                    values.append(str(getattr(o, "event", None)))
                else:
                    values.append(str(rows[f][i]))
            strata_values[str(case_id)] = " × ".join(values)
    groups = splits.groups_of(strata_values, shared.values())
    assignment = splits.assign(strata_values, groups, seed=options.seed, ratios=options.ratios)
    split_of = {a.case_id: a.split for a in assignment}

    def split_batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(assignment), 50_000):
            part = assignment[start : start + 50_000]
            yield pa.RecordBatch.from_pydict(
                {
                    "case_id": [a.case_id for a in part],
                    "split": [a.split for a in part],
                    "stratum": [a.stratum for a in part],
                    "group": [a.group for a in part],
                },
                schema=SPLITS_SCHEMA,
            )

    writer.parquet("splits.parquet", SPLITS_SCHEMA, split_batches())
    advance("splits")

    # 4. patients
    schema = patients_schema(models)

    def patient_batches_out() -> Iterator[pa.RecordBatch]:
        for batch in tables.copy_batches(conn, tables.patients_query(version_id), tables.PATIENT_SQL_COLUMNS):
            pids = [int(x) for x in batch.column("patient_row").to_pylist()]
            cases = batch.column("case_id").to_pylist()
            arrays: dict[str, Any] = {
                f.name: batch.column(f.name) for f in batch.schema if f.name != "patient_row"
            }
            time_days: list[int | None] = []
            event: list[bool | None] = []
            reason: list[str | None] = []
            for pid in pids:
                o = outcomes.get(pid)
                if o is None or isinstance(o, str):
                    time_days.append(None)
                    event.append(None)
                    reason.append(o if isinstance(o, str) else "patient_not_found")
                else:
                    time_days.append(o.time_days)
                    event.append(o.event)
                    reason.append(None)
            arrays["os_time_days"] = pa.array(time_days, pa.int32())
            arrays["os_event"] = pa.array(event, pa.bool_())
            arrays["os_excluded_reason"] = pa.array(reason, pa.dictionary(pa.int32(), pa.string()))
            arrays["split"] = pa.array([split_of[c] for c in cases], pa.dictionary(pa.int32(), pa.string()))
            for m in MODALITIES:
                arrays[f"has_{m}"] = pa.array([m in modalities.get(pid, ()) for pid in pids], pa.bool_())
            for model in models:
                arrays[embedding_column(model)] = pa.array([model in emb_of.get(pid, ()) for pid in pids])
            yield pa.RecordBatch.from_arrays([arrays[f.name] for f in schema], schema=schema)

    writer.parquet("patients.parquet", schema, patient_batches_out())
    advance("patients")

    # 5. long clinical tables
    for name in tables.CHILD_TABLES:
        child = tables.child_schema_of(name)
        columns = [(f.name, f.type) for f in child]
        writer.parquet(
            f"{name}.parquet", child, tables.copy_batches(conn, tables.child_query(name, version_id), columns)
        )
    advance("clinical tables")

    # 6. embeddings
    emb_records = []
    for modality, model, dim in emb_sets:
        path = f"embeddings/{safe_part(modality)}/{safe_part(model)}.parquet"
        rec = writer.parquet(
            path,
            embeddings_schema(dim),
            vectors.embedding_batches(conn, snapshot, version_id, scope, modality, model, dim),
        )
        emb_records.append({"modality": modality, "model": model, "dim": dim, "path": path, "rows": rec.rows})
    runs = vectors.embedding_runs(conn, version_id, scope)
    advance("embeddings")

    # 6b. per-tile slide features (--tiles)
    shipped = tiles.TilesWritten()
    if options.tiles:
        shipped = tiles.write_tiles(
            conn,
            version_id,
            scope,
            staging=staging,
            writer=writer,
            report=lambda done, total: report(f"tiles: {done}/{total} slides", step, total_steps),
        )
        advance("tiles")

    # 7. download manifests
    writer.text("gdc_manifest.txt", _gdc_manifest(conn, version_id, scope), header=True)
    writer.text("idc_manifest.s5cmd", _idc_manifest(conn, version_id))
    advance("download manifests")

    # 8. Croissant
    rules = {"survival": SURVIVAL_RULES, "primary_diagnosis": PRIMARY_DIAGNOSIS_RULE, "splits": _SPLIT_RULE}
    parts = shipped.part_paths  # files of a multi-file dataset: no table (RecordSet) of their own
    parquet_files = [
        (f.path, f.sha256, f.schema) for f in writer.files if f.schema is not None and f.path not in parts
    ]
    doc = croissant.build(
        name=f"oncograph-cohort-{info['cohort']['id']}-v{info['cohort']['version']}",
        description=f"Cohort {info['cohort']['name']!r} (version {info['cohort']['version']}, "
        f"{info['cohort']['size']} patients) exported by oncograph.",
        files=parquet_files,
        provenance={**info, "options": options.to_json()},
        rules=rules,
        version=f"{info['cohort']['version']}.0.0",
        datasets=shipped.datasets,
        attachments=shipped.attachments,
    )
    writer.json("croissant.json", doc)
    advance("croissant")

    counts = {f.path: f.rows for f in writer.files if f.rows is not None}
    split_counts: dict[str, int] = defaultdict(int)
    for a in assignment:
        split_counts[a.split] += 1
    return {
        "export_schema_version": EXPORT_SCHEMA_VERSION,
        "oncograph_version": oncograph.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        **info,
        "options": options.to_json(),
        "rules": rules,
        "row_counts": counts,
        "splits": {s: split_counts.get(s, 0) for s in splits.SPLITS},
        "multi_patient_files": len(shared),
        "embeddings": emb_records,
        "embedding_runs": runs,
        **({"tiles": shipped.entries} if options.tiles else {}),
        "files": [f.to_json() for f in writer.files],
    }


_SPLIT_RULE = (
    "Splits are patient-level: patients sharing a file form one group and groups are never split; groups are "
    "stratified by the split_by fields, ordered by sha256(seed:group) and allocated by cumulative ratios."
)


def _gdc_manifest(conn: Connection, version_id: int, scope: Scope) -> Iterator[str]:
    """gdc-client's manifest: ``id filename md5 size state`` of the distinct visible GDC files (streamed)."""
    yield "id\tfilename\tmd5\tsize\tstate\n"
    rows = conn.execution_options(stream_results=True, yield_per=10_000).execute(
        tables.gdc_manifest_query(version_id, scope)
    )
    for row in rows:
        yield "\t".join(str(v) for v in row) + "\n"


def _idc_manifest(conn: Connection, version_id: int) -> Iterator[str]:
    """s5cmd commands (``idc-index``'s manifest format) for the distinct IDC series (streamed)."""
    rows = conn.execution_options(stream_results=True, yield_per=10_000).execute(
        tables.idc_manifest_query(version_id), {"v": version_id}
    )
    for (url,) in rows:
        yield f"cp {url} .\n"
