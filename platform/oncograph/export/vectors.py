"""The members' embeddings in an export: one scope-checked selection, and the pooled vectors streamed out of it.

Every embedding read of an export (the sets and ``has_emb_*`` flags, the pooled vectors, their runs, and the
slides whose tiles ``--tiles`` ships) selects from :func:`member_embeddings`, so what the access policy lets
an export see is decided once: embeddings attached to a member of the version (an unattached object has no
patient and never matches) whose project the scope may see.

Vectors leave PostgreSQL through binary COPY (a pgvector value is a fixed-size record, so a whole chunk
converts with one numpy view) on a second connection that shares the export's snapshot; the metadata comes
through the CSV path of :mod:`oncograph.export.tables`, in the same order.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
from psycopg import sql
from sqlalchemy import Connection, Subquery, Table, Text, cast, select

from oncograph.access import Scope
from oncograph.access.policy import patient_project_visible
from oncograph.db.copy_out import copy_out
from oncograph.db.models import CohortMember, Embedding, Patient
from oncograph.db.read_ahead import one_ahead
from oncograph.export.schema import embeddings_schema
from oncograph.export.snapshot import snapshot_connection
from oncograph.export.tables import Query, copy_batches

#: Bytes of binary COPY data converted at once (the stream arrives in small chunks).
VECTOR_CHUNK_BYTES = 8 << 20

_PGCOPY = b"PGCOPY\n\xff\r\n\x00"


def _t(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def member_embeddings(version_id: int, scope: Scope) -> Subquery:
    """The embeddings an export of cohort version ``version_id`` may ship under ``scope`` (module docstring),
    with the member's case UUID (``case_uuid`` for ordering, ``case_id`` as text)."""
    m, p, e = _t(CohortMember).alias("m"), _t(Patient).alias("p"), _t(Embedding).alias("e")
    return (
        select(
            p.c.id.label("patient_row"),
            p.c.case_id.label("case_uuid"),
            cast(p.c.case_id, Text()).label("case_id"),
            e.c.object_kind,
            e.c.object_id,
            e.c.modality,
            e.c.model,
            e.c.model_version,
            e.c.dim,
            e.c.run_id,
            e.c.vector,
            e.c.features_uri,
            e.c.features_sha256,
            e.c.features_bytes,
            e.c.tiles,
        )
        .select_from(m.join(p, p.c.id == m.c.patient_id).join(e, e.c.patient_id == p.c.id))
        .where(m.c.cohort_version_id == version_id, patient_project_visible(scope, p))
        .subquery("emb")
    )


def embedding_sets(conn: Connection, version_id: int, scope: Scope) -> list[tuple[str, str, int]]:
    """(modality, model, dim) of the embeddings the export ships."""
    emb = member_embeddings(version_id, scope)
    rows = conn.execute(
        select(emb.c.modality, emb.c.model, emb.c.dim)
        .distinct()
        .order_by(emb.c.modality, emb.c.model, emb.c.dim)
    ).all()
    return [(str(a), str(b), int(c)) for a, b, c in rows]


def models_of_patients(conn: Connection, version_id: int, scope: Scope) -> list[tuple[int, str]]:
    """(patient row, model) for every member with an embedding the export ships (the ``has_emb_*`` flags)."""
    emb = member_embeddings(version_id, scope)
    rows = conn.execute(select(emb.c.patient_row, emb.c.model).distinct()).all()
    return [(int(pid), str(model)) for pid, model in rows]


def embedding_runs(conn: Connection, version_id: int, scope: Scope) -> list[int]:
    """The runs that made the embeddings the export ships (provenance in the manifest)."""
    emb = member_embeddings(version_id, scope)
    rows = conn.execute(
        select(emb.c.run_id).distinct().where(emb.c.run_id.is_not(None)).order_by(emb.c.run_id)
    ).all()
    return [int(r) for (r,) in rows]


def embeddings_query(
    version_id: int, scope: Scope, modality: str, model: str, dim: int, *, vectors: bool
) -> Query:
    """The shipped embeddings of one set in export order: the metadata columns, or (``vectors``) only the
    vector column, for the binary path."""
    emb = member_embeddings(version_id, scope)
    c = emb.c
    columns = (
        [c.vector]
        if vectors
        else [c.case_id, c.object_kind, c.object_id, c.modality, c.model, c.model_version, c.run_id]
    )
    statement = (
        select(*columns)
        .where(c.modality == modality, c.model == model, c.dim == dim)
        .order_by(c.case_uuid, c.object_kind, c.object_id, c.model_version)
    )
    return Query(statement)


def vector_chunks(
    raw: Any, statement: sql.Composable, params: Mapping[str, Any], dim: int
) -> Generator[np.ndarray, None, None]:
    """float32 arrays ``[n, dim]`` from ``COPY (statement) TO STDOUT (FORMAT binary)`` on the psycopg
    connection ``raw``. A pgvector value travels as int16 dim, int16 0, then ``dim`` big-endian float4, so
    every row has the same size and a whole chunk converts with one numpy view."""
    row = np.dtype(
        [("fields", ">i2"), ("size", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (dim,))]
    )
    copy_statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT binary)").format(statement)
    rest = b""
    started = False

    def convert(data: bytes) -> tuple[np.ndarray, bytes]:
        n = len(data) // row.itemsize
        rows = np.frombuffer(data, dtype=row, count=n)
        if not (np.all(rows["size"] == 4 + 4 * dim) and np.all(rows["dim"] == dim)):
            raise ValueError(f"an embedding of another dimension than {dim} in the stream")
        return rows["v"].astype("<f4").reshape(n, dim), data[n * row.itemsize :]

    blocks = copy_out(raw, copy_statement, params, block_bytes=VECTOR_CHUNK_BYTES)
    ahead = one_ahead(blocks, lambda block: block)  # the next block is read while this one is written
    try:
        for block in ahead:
            data = rest + block
            if not started:
                data, started = _skip_header(data), True
            vectors, rest = convert(data)
            if len(vectors):
                yield vectors
    finally:
        ahead.close()
        blocks.close()
    if not started:
        rest = _skip_header(rest)
    if rest not in (b"\xff\xff", b""):
        raise ValueError(f"{len(rest)} unexpected bytes at the end of the vector stream")


def _skip_header(data: bytes) -> bytes:
    if data[:11] != _PGCOPY:
        raise ValueError("not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(data[15:19], "big")
    return data[19 + extension :]


def embedding_batches(
    conn: Connection, snapshot: str, version_id: int, scope: Scope, modality: str, model: str, dim: int
) -> Iterator[pa.RecordBatch]:
    """The shipped embeddings of one set as record batches: metadata through the CSV path on ``conn``,
    vectors through binary COPY on a second connection that shares ``conn``'s snapshot
    (``pg_export_snapshot``), zipped in the same order."""
    meta_columns = [(n, t) for n, t in embeddings_columns(dim) if n != "vector"]
    schema = embeddings_schema(dim)
    statement, params = embeddings_query(version_id, scope, modality, model, dim, vectors=True).composed(
        conn.dialect
    )
    with snapshot_connection(conn.engine, snapshot) as side:
        raw = side.connection.driver_connection
        assert raw is not None
        vectors = vector_chunks(raw, statement, params, dim)
        try:
            chunk = np.empty((0, dim), np.float32)
            meta = copy_batches(
                conn, embeddings_query(version_id, scope, modality, model, dim, vectors=False), meta_columns
            )
            for batch in meta:
                # zipped slice by slice: a batch of metadata rows and the vectors held are cut, never joined
                offset = 0
                while offset < batch.num_rows:
                    if not len(chunk):
                        more = next(vectors, None)
                        if more is None:
                            raise RuntimeError("fewer embedding vectors than metadata rows")
                        chunk = more
                    k = min(batch.num_rows - offset, len(chunk))
                    column = pa.FixedSizeListArray.from_arrays(
                        pa.array(chunk[:k].reshape(-1), pa.float32()), dim
                    )
                    yield pa.RecordBatch.from_arrays([*batch.slice(offset, k).columns, column], schema=schema)
                    chunk = chunk[k:]
                    offset += k
            if len(chunk) or next(vectors, None) is not None:
                raise RuntimeError("embedding metadata and vectors differ in length")
        finally:
            vectors.close()  # a stream left early is cancelled before the connection rolls back


def embeddings_columns(dim: int) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in embeddings_schema(dim)]
