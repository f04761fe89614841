"""IDC (Imaging Data Commons): the series index that ``idc-index-data`` ships, read offline with Arrow.

Key contracts:

- :func:`open_index` identifies a file by its sha256 and its IDC version; it reads no rows.
- :func:`read_series` reads (and so checks) the whole file before anything is streamed, and knows the
  quarantined rows and the groups (study, collection, patient) before streaming starts.
- No row is dropped silently: it is streamed, or in ``SeriesRows.quarantined`` with its reasons; a value
  that could not be typed is streamed as NULL and counted in ``SeriesRows.warnings``.
- ``row_hash`` is the SHA-1 of a row's ``SERIES_FIELDS`` values in their binary ``COPY`` encoding.
"""

from oncograph.sources.idc.fields import GROUP_FIELDS, ROW_COLUMNS, SERIES_FIELDS, IndexField
from oncograph.sources.idc.index_file import IndexFile, IndexFileError, default_index_path, open_index
from oncograph.sources.idc.series_rows import (
    SERIES_LEVEL,
    Compose,
    EncodedBatch,
    QuarantinedRow,
    SeriesRows,
    read_series,
)

__all__ = [
    "GROUP_FIELDS",
    "ROW_COLUMNS",
    "SERIES_FIELDS",
    "SERIES_LEVEL",
    "Compose",
    "EncodedBatch",
    "IndexField",
    "IndexFile",
    "IndexFileError",
    "QuarantinedRow",
    "SeriesRows",
    "default_index_path",
    "open_index",
    "read_series",
]
