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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, text

import oncograph
from oncograph.access import Scope
from oncograph.cohorts.survival import SURVIVAL_RULES
from oncograph.db.statistics import analyze_if_underestimated
from oncograph.export import croissant, patients, splits, tables, tiles, vectors
from oncograph.export.options import ExportOptions, Progress
from oncograph.export.schema import (
    EXPORT_SCHEMA_VERSION,
    FILES_SCHEMA,
    PRIMARY_DIAGNOSIS_RULE,
    SPLITS_SCHEMA,
    embeddings_schema,
    patients_schema,
)
from oncograph.export.snapshot import snapshot_connection
from oncograph.export.storage import Staging, safe_part
from oncograph.export.writer import FileRecord, Writer


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

    def advance(stage: str, *, count: bool = True) -> None:
        nonlocal step
        step += count
        report(stage, step, total_steps)

    conn.execute(text(tables.SERIAL_READS))
    # the planner must know how many members this version has (a fresh version is estimated at one row)
    analyze_if_underestimated(
        conn.engine, "cohort_member", "cohort_version_id", version_id, info["cohort"]["size"]
    )

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-beside")
    try:
        return _write_main(conn, snapshot, writer, version_id, scope, options, info, advance, pool)
    finally:
        pool.shutdown(wait=True)


class _Advance(Protocol):
    def __call__(self, stage: str, *, count: bool = True) -> None: ...


def _write_main(
    conn: Connection,
    snapshot: str,
    writer: Writer,
    version_id: int,
    scope: Scope,
    options: ExportOptions,
    info: dict[str, Any],
    advance: _Advance,
    pool: ThreadPoolExecutor,
) -> dict[str, Any]:
    staging = writer.staging
    # 1. each member's stratum, from a narrow pass over the patients query, read beside while PostgreSQL
    #    sorts the files below (one core busy, the client idle); members are numbered 0..n-1 in case-id order,
    #    and every per-member value below is an array in that order
    emb_sets = vectors.embedding_sets(conn, version_id, scope)
    models = sorted({m for _, m, _ in emb_sets})
    strata_job = pool.submit(_read_strata, conn.engine, snapshot, version_id, scope, list(options.split_by))

    # 2. files; the members holding a file together (rare: multi-case files) are then read in PostgreSQL
    held_together = 0

    def file_batches() -> Iterator[pa.RecordBatch]:
        nonlocal held_together
        for batch in tables.copy_batches(conn, tables.files_query(version_id, scope), tables.files_columns()):
            held_together += pc.sum(pc.greater(batch.column("shared_by_patients"), 1)).as_py() or 0
            yield batch

    writer.parquet("files.parquet", FILES_SCHEMA, file_batches())
    member_rows, case_ids, strata = strata_job.result()
    advance("strata")
    by_row = np.argsort(member_rows)
    shared_sets: list[list[int]] = []
    multi_patient_files = 0
    if held_together:
        for ids, files in conn.execute(tables.shared_sets_query(version_id, scope)):
            shared_sets.append([int(i) for i in by_row[np.searchsorted(member_rows, ids, sorter=by_row)]])
            multi_patient_files += int(files)
    advance("files")

    # the clinical tables and the download manifests need nothing else: they are written on a second thread
    # and connection (in the same snapshot) while this one writes the splits and the patients, whose queries
    # keep one core of PostgreSQL busy and the client nearly idle (started earlier, they competed with the
    # files stage, which keeps both busy)
    beside = pool.submit(_write_beside, conn.engine, snapshot, writer, version_id, scope)

    # 3. splits
    group = splits.groups(len(case_ids), shared_sets)
    cases = case_ids.to_pylist()
    split_index = splits.assign(cases, strata.to_pylist(), group, seed=options.seed, ratios=options.ratios)
    del cases
    split_names = pa.array(splits.SPLITS)

    def split_batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(case_ids), 50_000):
            part = slice(start, start + 50_000)
            yield pa.RecordBatch.from_arrays(
                [
                    case_ids[part],
                    split_names.take(pa.array(split_index[part])).dictionary_encode(),
                    strata[part].dictionary_encode(),
                    case_ids.take(pa.array(group[part])),
                ],
                schema=SPLITS_SCHEMA,
            )

    writer.parquet("splits.parquet", SPLITS_SCHEMA, split_batches())
    advance("splits")

    # 4. patients
    schema = patients_schema(models)
    split_column = split_names.take(pa.array(split_index)).dictionary_encode()
    writer.parquet(
        "patients.parquet",
        schema,
        patients.patient_batches(conn, version_id, scope, models, schema, split_column, case_ids),
    )
    advance("patients")

    # 5. long clinical tables (written beside)
    clinical, manifests = beside.result()
    writer.files.extend(clinical)
    advance("clinical tables")

    # 6. embeddings: every other set on the second thread (one set keeps the two cores only half busy)
    def write_set(on: Connection, modality: str, model: str, dim: int) -> FileRecord:
        path = f"embeddings/{safe_part(modality)}/{safe_part(model)}.parquet"
        batches = vectors.embedding_batches(on, snapshot, version_id, scope, modality, model, dim)
        return writer.parquet(path, embeddings_schema(dim), batches, keep=False)

    def write_sets_beside(sets: list[tuple[str, str, int]]) -> list[FileRecord]:
        with snapshot_connection(conn.engine, snapshot) as side:
            return [write_set(side, *s) for s in sets]

    beside_sets = pool.submit(write_sets_beside, emb_sets[1::2])
    written = dict(zip(emb_sets[0::2], [write_set(conn, *s) for s in emb_sets[0::2]], strict=True))
    written.update(zip(emb_sets[1::2], beside_sets.result(), strict=True))
    emb_records = []
    for modality, model, dim in emb_sets:  # listed in the sets' order
        rec = written[(modality, model, dim)]
        writer.files.append(rec)
        emb_records.append(
            {"modality": modality, "model": model, "dim": dim, "path": rec.path, "rows": rec.rows}
        )
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
            report=lambda done, total: advance(f"tiles: {done}/{total} slides", count=False),
        )
        advance("tiles")

    # 7. download manifests (written beside, with the clinical tables)
    writer.files.extend(manifests)
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
    split_counts = np.bincount(split_index, minlength=len(splits.SPLITS))
    return {
        "export_schema_version": EXPORT_SCHEMA_VERSION,
        "oncograph_version": oncograph.__version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        **info,
        "options": options.to_json(),
        "rules": rules,
        "row_counts": counts,
        "splits": {s: int(split_counts[i]) for i, s in enumerate(splits.SPLITS)},
        "multi_patient_files": multi_patient_files,
        "embeddings": emb_records,
        "embedding_runs": runs,
        **({"tiles": shipped.entries} if options.tiles else {}),
        "files": [f.to_json() for f in writer.files],
    }


_SPLIT_RULE = (
    "Splits are patient-level: patients sharing a file form one group and groups are never split; groups are "
    "stratified by the split_by fields, ordered by sha256(seed:group) and allocated by cumulative ratios."
)


def _read_strata(
    engine: Engine, snapshot: str, version_id: int, scope: Scope, fields: list[str]
) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """(patient row, case id, stratum label) of every member in case-id order, as arrays, read on a
    connection of its own in the export's snapshot."""
    row_parts: list[np.ndarray] = []
    case_parts: list[pa.Array] = []
    strata_parts: list[pa.Array] = []
    statement, strata_columns = patients.strata_query(version_id, scope, fields)
    with snapshot_connection(engine, snapshot) as conn:
        for batch in tables.copy_batches(conn, statement, strata_columns):
            row_parts.append(batch.column("patient_row").to_numpy())
            case_parts.append(batch.column("case_id"))
            strata_parts.append(patients.strata_labels(batch, fields))
    member_rows = np.concatenate(row_parts) if row_parts else np.zeros(0, np.int64)
    case_ids = pa.chunked_array(case_parts, pa.string()).combine_chunks()
    strata = pa.chunked_array(strata_parts, pa.string()).combine_chunks()
    return member_rows, case_ids, strata


def _write_beside(
    engine: Engine, snapshot: str, writer: Writer, version_id: int, scope: Scope
) -> tuple[list[FileRecord], list[FileRecord]]:
    """The long clinical tables and the download manifests, on a connection of their own in the export's
    snapshot; their records, in the dataset's order, for the caller to list."""
    with snapshot_connection(engine, snapshot) as conn:
        clinical = []
        for name in tables.CHILD_TABLES:
            child = tables.child_schema_of(name)
            columns = [(f.name, f.type) for f in child]
            batches = tables.copy_batches(conn, tables.child_query(name, version_id), columns)
            clinical.append(writer.parquet(f"{name}.parquet", child, batches, keep=False))
        manifests = [
            writer.text("gdc_manifest.txt", _gdc_manifest(conn, version_id, scope), header=True, keep=False),
            writer.text("idc_manifest.s5cmd", _idc_manifest(conn, version_id), keep=False),
        ]
    return clinical, manifests


def _gdc_manifest(conn: Connection, version_id: int, scope: Scope) -> Iterator[bytes]:
    """gdc-client's manifest: ``id filename md5 size state`` of the distinct visible GDC files (streamed)."""
    yield b"id\tfilename\tmd5\tsize\tstate\n"
    yield from tables.manifest_lines(conn, tables.gdc_manifest_query(version_id, scope))


def _idc_manifest(conn: Connection, version_id: int) -> Iterator[bytes]:
    """s5cmd commands (``idc-index``'s manifest format) for the distinct IDC series (streamed)."""
    return tables.manifest_lines(conn, tables.idc_manifest_query(version_id))
