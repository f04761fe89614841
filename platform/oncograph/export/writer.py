"""Files of an export written into its staging area, each hashed (SHA-256) and sized as it streams."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from oncograph.export.storage import Staging

ROW_GROUP = 64 * 1024
ROW_GROUP_BYTES = 16 << 20


class HashingSink:
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


def dictionary_columns(schema: pa.Schema) -> bool | list[str]:
    """What Parquet dictionary-encodes: every column but float vectors. A vector seldom repeats, so a
    dictionary of its values is built per row group only to be given up at 1 MiB: twice the write time, and
    larger files. (``True`` where a table has no vector: a list of names would also leave out the values of
    nested columns such as lists of ids, which Parquet names by their leaf path.)"""
    vectors = [f.name for f in schema if _is_float_vector(f.type)]
    return [f.name for f in schema if f.name not in vectors] if vectors else True


def _is_float_vector(t: pa.DataType) -> bool:
    return bool(
        (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t))
        and pa.types.is_floating(t.value_type)
    )


class Writer:
    """Writes files into a staging area and records their sizes and hashes."""

    def __init__(self, staging: Staging, compression: str) -> None:
        self.staging = staging
        self.compression = None if compression == "none" else compression
        self.files: list[FileRecord] = []

    def parquet(
        self, path: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch], *, keep: bool = True
    ) -> FileRecord:
        """Write one Parquet file and return its record; ``keep=False`` leaves adding it to :attr:`files` to
        the caller (files written on several threads, listed in a fixed order afterwards)."""
        rows = 0
        with self.staging.open(path) as fh:
            sink = HashingSink(fh)
            with pq.ParquetWriter(
                pa.PythonFile(sink, mode="w"),
                schema,
                compression=self.compression,
                write_statistics=True,
                store_schema=True,
                use_dictionary=dictionary_columns(schema),
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
        if keep:
            self.files.append(record)
        return record

    def text(
        self, path: str, chunks: Iterator[str | bytes], *, header: bool = False, keep: bool = True
    ) -> FileRecord:
        """A text file from ``chunks`` (lines, or blocks of whole lines); its rows are its lines, less the
        header. ``keep`` as for :meth:`parquet`."""
        rows = -1 if header else 0
        with self.staging.open(path) as fh:
            sink = HashingSink(fh)
            for chunk in chunks:
                data = chunk.encode() if isinstance(chunk, str) else chunk
                sink.write(data)
                rows += data.count(b"\n")
        record = FileRecord(path, rows, sink.size, sink.sha256.hexdigest())
        if keep:
            self.files.append(record)
        return record

    def json(self, path: str, doc: Any) -> FileRecord:
        data = json.dumps(doc, indent=2, sort_keys=True, default=str).encode()
        with self.staging.open(path) as fh:
            fh.write(data)
        record = FileRecord(path, None, len(data), hashlib.sha256(data).hexdigest())
        self.files.append(record)
        return record
