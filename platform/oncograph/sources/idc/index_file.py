"""One IDC series index file (``idc_index.parquet``): where it is, what it holds, which IDC version it is.

The index that ``idc-index-data`` ships is IDC's whole series index (one row per DICOM series, ~1M rows), so
oncograph reads it offline. Any other Parquet file with the same columns can be read instead (a newer or
older index, or a subset written by a test).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from oncograph.errors import InputFormatError, SourceError

#: The distribution that ships the index, recorded in the release and the pointer document.
PACKAGE = "idc-index-data"
#: Columns without which a file is not a series index.
REQUIRED_COLUMNS = ("collection_id", "PatientID", "StudyInstanceUID", "SeriesInstanceUID")


class IndexFileError(SourceError):
    """An index file cannot be read (missing, truncated, not Parquet, or not a series index)."""


@dataclass(frozen=True, slots=True)
class IndexFile:
    """An index file, identified by content.

    Attributes:
        path: where it was read from.
        sha256: hex digest of the file's bytes (the ``content_hash`` of its source document).
        row_count: rows in the file (series, including any that will be quarantined).
        columns: the file's column names, in file order.
        idc_version: the IDC data release it describes: ``max(series_revised_idc_version)`` over the
            whole file (every IDC release revises or adds series, so the newest revision is the release).
        package_version: the ``idc-index-data`` version when ``path`` is that package's own file.
        build: the ``idc_index_data_version`` the file's Parquet metadata carries, if any.
    """

    path: Path
    sha256: str
    row_count: int
    columns: tuple[str, ...]
    idc_version: int
    package_version: str | None = None
    build: str | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def release_label(self) -> str:
        """The ``source_release.release`` of this file.

        The package's own file is ``idc v25 (idc-index-data 25.0.5)``; any other file is also named by its
        content, ``idc v25 (my_index.parquet sha256:0123456789abcdef)``, since its name says nothing.
        """
        if self.package_version:
            return f"idc v{self.idc_version} ({PACKAGE} {self.package_version})"
        return f"idc v{self.idc_version} ({self.name} sha256:{self.sha256[:16]})"

    def pointer(self) -> dict[str, Any]:
        """The raw JSON of the file's source document: a pointer to the file, not its million rows."""
        return {
            "package": PACKAGE if self.package_version else None,
            "version": self.package_version,
            "build": self.build,
            "file": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "row_count": self.row_count,
            "idc_version": self.idc_version,
            "columns": list(self.columns),
        }


def default_index_path() -> Path:
    """The series index that the installed ``idc-index-data`` ships.

    Raises:
        IndexFileError: the installed package has no index file.
    """
    import idc_index_data

    if idc_index_data.IDC_INDEX_PARQUET_FILEPATH is None:
        raise IndexFileError(
            f"the installed {PACKAGE} has no idc_index.parquet", hint=f"reinstall {PACKAGE}, or pass --index"
        )
    return Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)


def _package_version() -> str:
    import idc_index_data

    return str(idc_index_data.__version__)


def open_index(path: Path | None = None) -> IndexFile:
    """Identify an index file: hash it, read its schema and its IDC version (nothing else is read).

    Args:
        path: a series index Parquet file; default the one ``idc-index-data`` ships.

    Returns:
        The file's identity and size.

    Raises:
        IndexFileError: the file is missing, unreadable or not Parquet (the message names the file).
        InputFormatError: the file lacks the columns of a series index.

    Examples:
        >>> index = open_index()
        >>> index.release_label().startswith("idc v")
        True
    """
    path = (path or default_index_path()).resolve()
    try:
        with path.open("rb") as fh:
            sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
        parquet = pq.ParquetFile(path)
        columns = tuple(parquet.schema_arrow.names)
        metadata = parquet.schema_arrow.metadata or {}
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise InputFormatError(
                f"{path} is not an IDC series index: it has no column {', '.join(missing)}",
                hint="pass the idc_index.parquet of idc-index-data, or a file with its columns",
            )
        version = _idc_version(path, parquet, metadata)
        row_count = int(parquet.metadata.num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise IndexFileError(
            f"cannot read the IDC index {path}: {exc}",
            hint="check that the file exists and is a complete Parquet file (reinstall idc-index-data "
            "if it is the packaged one)",
        ) from exc
    build = metadata.get(b"idc_index_data_version")
    own = path == default_index_path().resolve()
    return IndexFile(
        path=path,
        sha256=sha256,
        row_count=row_count,
        columns=columns,
        idc_version=version,
        package_version=_package_version() if own else None,
        build=build.decode() if build else None,
    )


def _idc_version(path: Path, parquet: Any, metadata: dict[bytes, bytes]) -> int:
    if "series_revised_idc_version" in parquet.schema_arrow.names:
        revised = parquet.read(columns=["series_revised_idc_version"]).column(0)
        newest = pc.max(revised).as_py()
        if newest is not None:
            return int(newest)
    build = metadata.get(b"idc_index_data_version", b"").decode()
    major = build.split(".", 1)[0]
    if major.isdigit():
        return int(major)
    raise InputFormatError(
        f"{path} names no IDC version: no series_revised_idc_version values and no "
        "idc_index_data_version metadata",
        hint="pass an index written by idc-index-data",
    )
