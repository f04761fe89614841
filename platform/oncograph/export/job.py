"""Export a frozen cohort version as an ML-ready dataset (layout in README / ARCHITECTURE):

``manifest.json`` (written last: the commit record), ``croissant.json``, ``patients.parquet``, long clinical
tables, ``files.parquet``, ``gdc_manifest.txt`` (gdc-client), ``idc_manifest.s5cmd`` (s5cmd / idc-index),
``embeddings/<modality>/<model>.parquet`` and ``splits.parquet``.

Each table streams from PostgreSQL (``tables.copy_batches``) into a Parquet writer that hashes the bytes as it
writes them, so memory does not grow with the cohort. Row order is fixed (case UUID, then record UUID) and no
timestamp is written inside a data file: the same cohort version and options give byte-identical Parquet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session, sessionmaker

import oncograph
from oncograph.access import Scope
from oncograph.cohorts import saved
from oncograph.cohorts.fields import MODALITIES
from oncograph.cohorts.survival import SURVIVAL_RULES, survival_outcomes
from oncograph.db.models import Cohort, Export, Principal
from oncograph.errors import (
    ConflictError,
    NotFoundError,
    OncographError,
    PermissionDeniedError,
    ValidationError,
)
from oncograph.export import croissant, splits, tables
from oncograph.export.schema import (
    DEFAULT_STRATIFY,
    EXPORT_SCHEMA_VERSION,
    FILES_SCHEMA,
    PRIMARY_DIAGNOSIS_RULE,
    SPLITS_SCHEMA,
    STRATIFY_FIELDS,
    embedding_column,
    embeddings_schema,
    patients_schema,
)
from oncograph.export.storage import Destination, Staging, remove_stale_staging
from oncograph.lineage.runs import finish_run, start_run

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``."""

ROW_GROUP = 64 * 1024
ROW_GROUP_BYTES = 32 << 20


@dataclass(frozen=True)
class ExportOptions:
    split_by: tuple[str, ...] = DEFAULT_STRATIFY
    seed: int = 0
    ratios: tuple[float, float, float] = splits.DEFAULT_RATIOS
    overwrite: bool = False
    compression: str = "zstd"

    def __post_init__(self) -> None:
        unknown = [f for f in self.split_by if f not in STRATIFY_FIELDS]
        if unknown:
            raise ValidationError(
                f"cannot stratify by {unknown}", hint=f"choose from {', '.join(STRATIFY_FIELDS)}"
            )
        splits.check_ratios(self.ratios)
        if self.compression not in ("zstd", "snappy", "gzip", "none"):
            raise ValidationError(f"unknown compression {self.compression!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "split_by": list(self.split_by),
            "seed": self.seed,
            "ratios": list(self.ratios),
            "compression": self.compression,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportOptions:
        return cls(
            split_by=tuple(raw.get("split_by", DEFAULT_STRATIFY)),
            seed=int(raw.get("seed", 0)),
            ratios=splits.check_ratios(raw.get("ratios", splits.DEFAULT_RATIOS)),
            overwrite=bool(raw.get("overwrite", False)),
            compression=str(raw.get("compression", "zstd")),
        )


class _HashingSink:
    """A write-only binary stream that hashes and counts what passes through."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


@dataclass
class FileRecord:
    path: str
    rows: int | None
    size: int
    sha256: str
    schema: pa.Schema | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        if self.rows is not None:
            out["rows"] = self.rows
        return out


@dataclass
class ExportResult:
    export_id: int
    destination: str
    manifest: dict[str, Any]
    """The published manifest (its ``files`` list every file with size and sha256)."""


class _Writer:
    """Writes files into a staging area and records their sizes and hashes."""

    def __init__(self, staging: Staging, compression: str) -> None:
        self.staging = staging
        self.compression = None if compression == "none" else compression
        self.files: list[FileRecord] = []

    def parquet(self, path: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> FileRecord:
        rows = 0
        with self.staging.open(path) as fh:
            sink = _HashingSink(fh)
            with pq.ParquetWriter(
                pa.PythonFile(sink, mode="w"),
                schema,
                compression=self.compression,
                write_statistics=True,
                store_schema=True,
            ) as writer:
                pending: list[pa.RecordBatch] = []
                pending_rows = pending_bytes = 0
                for batch in batches:
                    pending.append(batch.cast(schema) if batch.schema != schema else batch)
                    pending_rows += batch.num_rows
                    pending_bytes += batch.nbytes
                    # a row group is ROW_GROUP rows or ROW_GROUP_BYTES, whichever comes first: wide rows
                    # (embedding vectors) must not hold hundreds of MB in memory
                    if pending_rows >= ROW_GROUP or pending_bytes >= ROW_GROUP_BYTES:
                        writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=ROW_GROUP)
                        rows += pending_rows
                        pending, pending_rows, pending_bytes = [], 0, 0
                if pending:
                    writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=ROW_GROUP)
                    rows += pending_rows
        record = FileRecord(path, rows, sink.size, sink.sha256.hexdigest(), schema)
        self.files.append(record)
        return record

    def text(self, path: str, lines: Iterator[str], *, header: bool = False) -> FileRecord:
        rows = -1 if header else 0
        with self.staging.open(path) as fh:
            sink = _HashingSink(fh)
            for line in lines:
                sink.write(line.encode())
                rows += 1
        record = FileRecord(path, rows, sink.size, sink.sha256.hexdigest())
        self.files.append(record)
        return record

    def json(self, path: str, doc: Any) -> FileRecord:
        data = json.dumps(doc, indent=2, sort_keys=True, default=str).encode()
        with self.staging.open(path) as fh:
            fh.write(data)
        record = FileRecord(path, None, len(data), hashlib.sha256(data).hexdigest())
        self.files.append(record)
        return record


# -- the job ------------------------------------------------------------------------------------------------


def create_export(
    session: Session,
    *,
    cohort_id: int,
    principal: Principal,
    destination: str,
    options: ExportOptions,
    version: int | None = None,
    scope: Scope | None = None,
) -> Export:
    """Record a queued export of a cohort version the principal can see (curator or admin); under a
    ``scope``, a cohort holding controlled patients without a grant does not exist for it."""
    if principal.role not in ("curator", "admin"):
        raise PermissionDeniedError("exports need the curator role", hint="ask an admin for the curator role")
    v = saved.version(session, cohort_id, principal, version, scope)
    Destination(destination)  # validate early
    row = Export(
        cohort_id=cohort_id,
        cohort_version=v.version,
        principal_id=principal.id,
        destination=destination,
        options={**options.to_json(), "overwrite": options.overwrite},
        status="queued",
        progress={"stage": "queued", "done": 0, "total": 0},
    )
    session.add(row)
    session.flush()
    return row


def run_export(
    factory: sessionmaker[Session],
    export_id: int,
    scope: Scope,
    *,
    progress: Progress | None = None,
    endpoint_url: str | None = None,
    prefect_flow_run_id: str | None = None,
) -> ExportResult:
    """Run a queued export to completion; on failure nothing is published and the record says why.
    The export is also an oncograph run (transform ``export_cohort``) with its counts."""
    with factory() as session, session.begin():
        row = session.get(Export, export_id)
        if row is None:
            raise NotFoundError(f"no export {export_id}")
        if row.status not in ("queued", "failed"):
            raise ConflictError(f"export {export_id} is {row.status}", hint="create a new export instead")
        run = start_run(
            session,
            transform="export_cohort",
            parameters={
                "export_id": export_id,
                "cohort_id": row.cohort_id,
                "version": row.cohort_version,
                "destination": row.destination,
                "options": row.options,
            },
            prefect_flow_run_id=prefect_flow_run_id,
        )
        row.status = "running"
        row.error = None
        row.run_id = run.id
        principal = session.get(Principal, row.principal_id)
        assert principal is not None
        cohort = session.get(Cohort, row.cohort_id)
        assert cohort is not None
        v = saved.version(session, row.cohort_id, principal, row.cohort_version)
        if saved.hides_members(session, row.cohort_id, scope):
            raise PermissionDeniedError(
                f"cohort {row.cohort_id} holds patients of controlled projects you have no grant for",
                hint="ask an admin for the grant, or export a cohort made under your own grants",
            )
        options = ExportOptions.from_json(row.options)
        destination = Destination(row.destination, endpoint_url=endpoint_url)
        info = {
            "cohort": {
                "id": cohort.id,
                "name": cohort.name,
                "kind": cohort.kind,
                "definition": cohort.definition,
                "version": v.version,
                "size": v.size,
                "member_hash": v.member_hash,
                "created_at": v.created_at.isoformat(),
            },
            "releases": v.releases,
            "principal": {"name": principal.name, "role": principal.role, **scope.to_json()},
        }
        version_id = v.version_id

    def report(stage: str, done: int, total: int) -> None:
        with factory() as s, s.begin():
            s.execute(
                text("UPDATE export SET progress = CAST(:p AS jsonb) WHERE id = :id"),
                {"p": json.dumps({"stage": stage, "done": done, "total": total}), "id": export_id},
            )
        if progress:
            progress(stage, done, total)

    staging = Staging(destination, overwrite=options.overwrite)
    try:
        remove_stale_staging(destination)
        staging.check_target()
        with factory() as session:
            manifest = _write_all(session.connection(), staging, version_id, scope, options, info, report)
        data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
        staging.publish(data)
    except BaseException as exc:
        staging.abort()
        with factory() as s, s.begin():
            failed = s.get(Export, export_id)
            message = str(exc) if isinstance(exc, OncographError) else f"{type(exc).__name__}: {exc}"
            if failed is not None:
                failed.status = "failed"
                failed.error = message
                failed.finished_at = dt.datetime.now(dt.UTC)
            finish_run(s, run, status="failed", counts={}, error=message)
        raise
    with factory() as s, s.begin():
        done = s.get(Export, export_id)
        assert done is not None
        done.status = "succeeded"
        done.manifest = manifest
        done.finished_at = dt.datetime.now(dt.UTC)
        done.progress = {"stage": "published", "done": 1, "total": 1}
        finish_run(s, run, status="succeeded", counts={"totals": manifest["row_counts"]})
    if progress:
        progress("published", 1, 1)
    return ExportResult(export_id, destination.url, manifest)


def _write_all(
    conn: Connection,
    staging: Staging,
    version_id: int,
    scope: Scope,
    options: ExportOptions,
    info: dict[str, Any],
    report: Progress,
) -> dict[str, Any]:
    writer = _Writer(staging, options.compression)
    total_steps = 9
    step = 0

    def advance(stage: str) -> None:
        nonlocal step
        step += 1
        report(stage, step, total_steps)

    snapshot = str(conn.execute(text("SELECT pg_export_snapshot()")).scalar_one())
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
    for pid, label in conn.execute(text(tables.modality_pairs_query(version_id, scope))):
        modalities[int(pid)].add(str(label))
    emb_sets = tables.embedding_sets(conn, version_id)
    models = sorted({m for _, m, _ in emb_sets})
    emb_of: dict[int, set[str]] = defaultdict(set)
    for pid, model in conn.execute(
        text(
            "SELECT DISTINCT e.patient_id, e.model FROM embedding e JOIN cohort_member m "
            "ON m.patient_id = e.patient_id WHERE m.cohort_version_id = :v"
        ),
        {"v": version_id},
    ):
        emb_of[int(pid)].add(str(model))
        modalities[int(pid)].add("embedding")
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
    runs: set[int] = set()
    for modality, model, dim in emb_sets:
        path = f"embeddings/{_safe(modality)}/{_safe(model)}.parquet"
        rec = writer.parquet(
            path,
            embeddings_schema(dim),
            tables.embedding_batches(conn, snapshot, version_id, modality, model, dim),
        )
        emb_records.append({"modality": modality, "model": model, "dim": dim, "path": path, "rows": rec.rows})
    for (run,) in conn.execute(
        text(
            "SELECT DISTINCT e.run_id FROM embedding e JOIN cohort_member m ON m.patient_id = e.patient_id "
            "WHERE m.cohort_version_id = :v AND e.run_id IS NOT NULL ORDER BY 1"
        ),
        {"v": version_id},
    ):
        runs.add(int(run))
    advance("embeddings")

    # 7. download manifests
    writer.text("gdc_manifest.txt", _gdc_manifest(conn, version_id, scope), header=True)
    writer.text("idc_manifest.s5cmd", _idc_manifest(conn, version_id))
    advance("download manifests")

    # 8. Croissant
    rules = {"survival": SURVIVAL_RULES, "primary_diagnosis": PRIMARY_DIAGNOSIS_RULE, "splits": _SPLIT_RULE}
    parquet_files = [(f.path, f.sha256, f.schema) for f in writer.files if f.schema is not None]
    doc = croissant.build(
        name=f"oncograph-cohort-{info['cohort']['id']}-v{info['cohort']['version']}",
        description=f"Cohort {info['cohort']['name']!r} (version {info['cohort']['version']}, "
        f"{info['cohort']['size']} patients) exported by oncograph.",
        files=parquet_files,
        provenance={**info, "options": options.to_json()},
        rules=rules,
        version=f"{info['cohort']['version']}.0.0",
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
        "embedding_runs": sorted(runs),
        "files": [f.to_json() for f in writer.files],
    }


_SPLIT_RULE = (
    "Splits are patient-level: patients sharing a file form one group and groups are never split; groups are "
    "stratified by the split_by fields, ordered by sha256(seed:group) and allocated by cumulative ratios."
)


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^0-9A-Za-z._-]+", "_", name).strip("_") or "unnamed"


def _gdc_manifest(conn: Connection, version_id: int, scope: Scope) -> Iterator[str]:
    """gdc-client's manifest: ``id filename md5 size state`` of the distinct visible GDC files (streamed)."""
    yield "id\tfilename\tmd5\tsize\tstate\n"
    rows = conn.execution_options(stream_results=True, yield_per=10_000).execute(
        text(tables.gdc_manifest_query(version_id, scope))
    )
    for row in rows:
        yield "\t".join(row) + "\n"


def _idc_manifest(conn: Connection, version_id: int) -> Iterator[str]:
    """s5cmd commands (``idc-index``'s manifest format) for the distinct IDC series (streamed)."""
    rows = conn.execution_options(stream_results=True, yield_per=10_000).execute(
        text(tables.idc_manifest_query(version_id))
    )
    for (url,) in rows:
        yield f"cp {url} .\n"


__all__ = [
    "ExportOptions",
    "ExportResult",
    "Progress",
    "create_export",
    "run_export",
]
