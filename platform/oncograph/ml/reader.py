"""Read an export folder (or ``s3://`` prefix): its manifest, verified files and embedding sets.

Nothing here needs PyTorch or the database. Local files are opened memory-mapped (``pyarrow.memory_map``);
other URLs (``s3://bucket/prefix``, ``file://``...) go through fsspec (``s3fs`` for S3) with the caller's
``storage_options`` (e.g. ``{"client_kwargs": {"endpoint_url": ...}}`` for MinIO).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from oncograph.errors import OncographError

MANIFEST = "manifest.json"
CLINICAL_TABLES = ("diagnoses", "treatments", "follow_ups", "exposures", "samples")
TABLES = ("patients", *CLINICAL_TABLES, "files", "splits")

_CHUNK = 8 << 20
#: Local files already hashed in this process (so train, val and test datasets hash an export once):
#: (path, inode, size, mtime_ns, ctime_ns, expected sha256); any write to a file changes its ctime.
_VERIFIED: set[tuple[str, int, int, int, int, str]] = set()


class ExportVerificationError(OncographError):
    """An export is missing, incomplete, of an incompatible schema version, or its files do not match the
    SHA-256 its manifest records (corrupt or modified)."""


@dataclass(frozen=True, slots=True)
class EmbeddingSet:
    """One ``embeddings/<modality>/<model>.parquet`` of the manifest.

    ``name`` is the model name, or ``modality/model`` when the export has that model under several
    modalities."""

    name: str
    modality: str
    model: str
    dim: int
    path: str
    rows: int

    @property
    def qualified(self) -> str:
        return f"{self.modality}/{self.model}"


class ExportReader:
    """An export's manifest and files. ``path``: a local folder or a URL fsspec understands."""

    def __init__(self, path: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None):
        raw = os.fspath(path)
        self.storage_options = dict(storage_options or {})
        if "://" in raw:
            import fsspec  # type: ignore[import-untyped]

            self.fs: Any = fsspec.core.url_to_fs(raw, **self.storage_options)[0]
            self.root = raw.rstrip("/")
            self.local = False
        else:
            self.fs = None
            self.root = str(Path(raw).expanduser().resolve())
            self.local = True
        try:
            with self.open(MANIFEST) as fh:
                self.manifest: dict[str, Any] = json.loads(fh.read())
        except FileNotFoundError as exc:
            raise ExportVerificationError(
                f"{raw} is not an oncograph export: it has no {MANIFEST}",
                hint="point at the folder an export wrote (the manifest is written last: "
                "without it the export did not finish)",
            ) from exc
        except json.JSONDecodeError as exc:
            raise ExportVerificationError(f"{raw}/{MANIFEST} is not valid JSON: {exc}") from exc
        self._records: dict[str, dict[str, Any]] = {
            str(f["path"]): f for f in self.manifest.get("files", []) if isinstance(f, dict) and "path" in f
        }

    # -- files ---------------------------------------------------------------------------------------------

    def url(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    @contextmanager
    def open(self, relative: str) -> Iterator[BinaryIO]:
        """A binary file of the export (memory-mapped when local)."""
        if self.fs is None:
            with pa.memory_map(self.url(relative), "r") as mm:
                yield mm
        else:
            with self.fs.open(self.url(relative), "rb") as fh:
                yield fh

    @contextmanager
    def parquet(self, relative: str) -> Iterator[Any]:
        """A ``pyarrow.parquet.ParquetFile`` over the (memory-mapped) file."""
        with self.open(relative) as fh:
            yield pq.ParquetFile(fh)

    def read_table(self, relative: str, columns: Sequence[str] | None = None) -> pa.Table:
        with self.parquet(relative) as pf:
            return pf.read(columns=list(columns) if columns is not None else None)

    # -- verification --------------------------------------------------------------------------------------

    def check_version(self) -> None:
        """Refuse exports of another major schema version than this oncograph writes."""
        # Imported here: the schema module pulls in the cohort field registry (SQLAlchemy models), which a
        # loader does not otherwise need.
        from oncograph.export.schema import EXPORT_SCHEMA_VERSION

        found = self.manifest.get("export_schema_version")
        if not isinstance(found, str) or not found:
            raise ExportVerificationError(
                f"{self.url(MANIFEST)} has no export_schema_version", hint="re-export with oncograph"
            )
        if found.split(".")[0] != EXPORT_SCHEMA_VERSION.split(".")[0]:
            raise ExportVerificationError(
                f"export schema version {found} is incompatible with this oncograph's "
                f"{EXPORT_SCHEMA_VERSION} (major versions differ)",
                hint="install the oncograph version that wrote it "
                f"({self.manifest.get('oncograph_version', 'unknown')}) or re-export",
            )

    def expected_sha256(self, relative: str) -> str:
        record = self._records.get(relative)
        if record is None or not isinstance(record.get("sha256"), str):
            raise ExportVerificationError(
                f"{relative} is not listed with a sha256 in {self.url(MANIFEST)}",
                hint="the manifest does not belong to these files; re-export or re-download",
            )
        return str(record["sha256"])

    def verify(self, relatives: Iterable[str]) -> None:
        """Check each file's SHA-256 (and size) against the manifest; raise on the first mismatch."""
        for relative in relatives:
            expected = self.expected_sha256(relative)
            key: tuple[str, int, int, int, int, str] | None = None
            if self.fs is None:
                try:
                    st = os.stat(self.url(relative))
                except FileNotFoundError as exc:
                    raise ExportVerificationError(
                        f"{self.url(relative)} is missing", hint="the export is incomplete; re-download it"
                    ) from exc
                key = (self.url(relative), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, expected)
                if key in _VERIFIED:
                    continue
            try:
                actual = self.sha256(relative)
            except FileNotFoundError as exc:
                raise ExportVerificationError(
                    f"{self.url(relative)} is missing", hint="the export is incomplete; re-download it"
                ) from exc
            if actual != expected:
                raise ExportVerificationError(
                    f"{self.url(relative)} is corrupt or was modified: its sha256 is {actual}, "
                    f"the manifest records {expected}",
                    hint="re-download or re-export it (verify=False skips the check)",
                )
            if key is not None:
                _VERIFIED.add(key)

    def check_sizes(self, relatives: Iterable[str]) -> None:
        """Check that each file is listed in the manifest and, when local, present with the size it records
        (a stat per file: cheap where hashing large files up front is not)."""
        for relative in relatives:
            self.expected_sha256(relative)
            if self.fs is not None:
                continue
            size = self._records[relative].get("size")
            try:
                actual = os.stat(self.url(relative)).st_size
            except FileNotFoundError as exc:
                raise ExportVerificationError(
                    f"{self.url(relative)} is missing", hint="the export is incomplete; re-download it"
                ) from exc
            if size is not None and actual != int(size):
                raise ExportVerificationError(
                    f"{self.url(relative)} is {actual} bytes, the manifest records {size}",
                    hint="re-download or re-export it (verify=False skips the check)",
                )

    def sha256(self, relative: str) -> str:
        digest = hashlib.sha256()
        if self.fs is None:
            with open(self.url(relative), "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        else:
            with self.fs.open(self.url(relative), "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
        return digest.hexdigest()

    def check_rows(self, relative: str, rows: int) -> None:
        expected = self.manifest.get("row_counts", {}).get(relative)
        if expected is not None and int(expected) != rows:
            raise ExportVerificationError(
                f"{self.url(relative)} has {rows} rows, the manifest records {expected}",
                hint="re-download or re-export it",
            )

    # -- embeddings ----------------------------------------------------------------------------------------

    def embedding_sets(self) -> list[EmbeddingSet]:
        raw = [e for e in self.manifest.get("embeddings", []) if isinstance(e, dict)]
        models = [str(e["model"]) for e in raw]
        out = []
        for e in raw:
            model, modality = str(e["model"]), str(e["modality"])
            name = model if models.count(model) == 1 else f"{modality}/{model}"
            out.append(
                EmbeddingSet(name, modality, model, int(e["dim"]), str(e["path"]), int(e.get("rows") or 0))
            )
        return out

    def select_embeddings(self, wanted: Sequence[str] | None) -> list[EmbeddingSet]:
        """The embedding sets named by ``wanted`` (set names, model names or ``modality/model``), in the
        order asked; ``None``: every set of the manifest."""
        sets = self.embedding_sets()
        if wanted is None:
            return sets
        if isinstance(wanted, str):
            wanted = [wanted]
        chosen: list[EmbeddingSet] = []
        for w in wanted:
            hits = [s for s in sets if w in (s.name, s.model, s.qualified)]
            if not hits:
                available = ", ".join(s.qualified for s in sets) or "none"
                raise ValueError(f"the export has no embeddings {w!r}; it has: {available}")
            chosen += [s for s in hits if s not in chosen]
        return chosen


def split_filter(reader: ExportReader, split: str | Sequence[str] | None) -> set[str] | None:
    """The split names asked for, checked against the manifest (``None``: all)."""
    if split is None:
        return None
    names = {split} if isinstance(split, str) else set(split)
    known = set(reader.manifest.get("splits", {})) | {"train", "val", "test"}
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"unknown split {unknown}; the export has {sorted(known)} (or None for all)")
    return names


def safe_name(name: str) -> str:
    """A name usable as a dataset key / column (letters, digits, ``_``)."""
    return re.sub(r"\W+", "_", name).strip("_") or "unnamed"
