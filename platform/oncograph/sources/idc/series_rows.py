"""Rows of the IDC series index, read with Arrow and streamed as binary ``COPY`` data in two parts.

:func:`read_series` reads the whole file (so a damaged file fails before anything is written), checks the
keys, quarantines rows without one (or repeating an earlier row's ``SeriesInstanceUID``) and numbers the
groups: rows with the same (StudyInstanceUID, collection_id, PatientID). Then:

- :meth:`SeriesRows.group_chunks`: one row per group, with the study-level values (smallest over the
  group's series) — small, it feeds patients and studies;
- :meth:`SeriesRows.copy_chunks`: the series rows, typed and encoded in batches on worker threads (Arrow
  kernels release the GIL) while the caller streams the chunks into ``COPY``. The caller lays out the rows
  (its ``compose`` function runs on the workers too); each batch brings its series-level fields pre-joined.

Nothing here touches a database.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from oncograph.sources.idc import pgcopy
from oncograph.sources.idc.fields import (
    BY_NAME,
    GROUP_FIELDS,
    SERIES_FIELDS,
    Findings,
    null_column,
    typed_column,
)
from oncograph.sources.idc.index_file import IndexFile, IndexFileError

#: Fields stored on the series itself, in the order of :attr:`EncodedBatch.series`.
SERIES_LEVEL: Final = tuple(
    f for f in SERIES_FIELDS if f.name not in GROUP_FIELDS or f.name == "collection_id"
)
_GROUP_ONLY: Final = tuple(f for f in SERIES_FIELDS if f not in SERIES_LEVEL)
_KEYS: Final = tuple(f for f in SERIES_FIELDS if f.kind == "key")
_GROUP_KEY: Final = ("study_instance_uid", "collection_id", "patient_id")
#: Typed once for the whole table (keys and group values); the rest is typed batch by batch.
_UPFRONT: Final = tuple(dict.fromkeys([*(f.name for f in _KEYS), *GROUP_FIELDS]))


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """An index row that cannot be stored, where it is, why, and its values."""

    location: str
    entity_id: str | None
    reasons: tuple[str, ...]
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A batch of valid rows, encoded for ``COPY`` (see :func:`oncograph.sources.idc.pgcopy.encode_field`).

    Attributes:
        series: per row, its :data:`SERIES_LEVEL` fields joined, in that order.
        index_row: encoded ``index_row`` (int4): the row's number in the file.
        row_hash: encoded ``row_hash`` (bytea): SHA-1 of the row's :data:`SERIES_FIELDS` values in their
            wire encoding (series-level fields, then the group's), so equal hashes mean equal values.
        group_id: encoded group number (int4).
        groups: the group numbers as an int32 array (to look up what the caller knows per group).
    """

    series: Any
    index_row: tuple[Any, Any]
    row_hash: tuple[Any, Any]
    group_id: tuple[Any, Any]
    groups: Any

    @property
    def num_rows(self) -> int:
        return len(self.groups)


Compose = Callable[[EncodedBatch], memoryview]


@dataclass(slots=True)
class SeriesRows:
    """The rows of an index file (or of some collections), checked and ready to stream.

    Attributes:
        index: the file.
        table: the raw columns the graph reads, plus ``index_row`` and ``group_id``.
        collections: the collections of the rows, sorted.
        file_collections: every collection of the file, sorted.
        valid: per row, whether it is streamed (it has every key and does not repeat a series).
        typed: key and group-level columns, typed (the rest is typed while streaming).
        groups: one row per group of valid rows: ``group_id`` and :data:`GROUP_FIELDS`.
        quarantined: rows that cannot be stored, with every reason.
        warnings: values stored as NULL or altered; complete once :meth:`copy_chunks` is exhausted.
    """

    index: IndexFile
    table: Any
    collections: tuple[str, ...]
    valid: Any
    typed: dict[str, Any]
    groups: Any
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    nul_columns: frozenset[str] = frozenset()
    findings: Findings = field(default_factory=Findings)
    file_collections: tuple[str, ...] = ()

    @property
    def rows_read(self) -> int:
        return int(self.table.num_rows)

    @property
    def rows_valid(self) -> int:
        return int(pc.sum(self.valid).as_py() or 0)

    def group_chunks(self) -> Iterator[memoryview]:
        """Binary ``COPY`` data of :attr:`groups`: ``group_id`` (int4) then :data:`GROUP_FIELDS`."""
        for batch in self.groups.to_batches(max_chunksize=65_536):
            parts = [pgcopy.encode_field(batch.column("group_id"), "int4")]
            parts += [pgcopy.encode_field(batch.column(n), BY_NAME[n].wire) for n in GROUP_FIELDS]
            yield pgcopy.tuples(len(parts), [pgcopy.join_fields(parts)])

    def copy_chunks(
        self, compose: Compose, *, batch_rows: int = 65_536, workers: int = 2
    ) -> Iterator[memoryview]:
        """The valid rows, in file order, as ``compose`` lays them out; one chunk per batch.

        Args:
            compose: turns an :class:`EncodedBatch` into ``COPY`` tuples (see ``pgcopy.tuples``); it runs on
                the worker threads.
            batch_rows: rows per batch.
            workers: encoding threads.

        Raises:
            IndexFileError: a column cannot be converted at all (e.g. numbers where dates belong).
        """
        starts = range(0, self.table.num_rows, batch_rows)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="idc-encode") as pool:
            pending: deque[Future[tuple[memoryview, Findings]]] = deque()
            for start in starts:
                pending.append(pool.submit(self._encode, start, batch_rows, compose))
                if len(pending) > workers:
                    yield self._take(pending.popleft())
            while pending:
                yield self._take(pending.popleft())
        self.warnings += self.findings.messages(self.index.name)

    def _take(self, future: Future[tuple[memoryview, Findings]]) -> memoryview:
        chunk, findings = future.result()
        self.findings.merge(findings)
        return chunk

    def _encode(self, start: int, length: int, compose: Compose) -> tuple[memoryview, Findings]:
        findings = Findings()
        raw = self.table.slice(start, length)
        valid = self.valid.slice(start, length)
        columns: dict[str, Any] = {}
        for f in SERIES_FIELDS:
            if f.name in self.typed:
                values = self.typed[f.name].slice(start, length)
            elif f.column in raw.column_names:
                values = typed_column(
                    raw[f.column].combine_chunks(),
                    f,
                    findings,
                    nul=f.column in self.nul_columns,
                    file=self.index.name,
                )
            else:
                values = null_column(f, raw.num_rows)
            columns[f.name] = values.filter(valid)
        series = pgcopy.join_fields([pgcopy.encode_field(columns[f.name], f.wire) for f in SERIES_LEVEL])
        group_values = pgcopy.join_fields([pgcopy.encode_field(columns[f.name], f.wire) for f in _GROUP_ONLY])
        groups = raw["group_id"].combine_chunks().filter(valid)
        batch = EncodedBatch(
            series=series,
            index_row=pgcopy.encode_field(raw["index_row"].combine_chunks().filter(valid), "int4"),
            row_hash=pgcopy.encode_field(
                pgcopy.digests(pgcopy.join_fields([(series, group_values)])), "bytea"
            ),
            group_id=pgcopy.encode_field(groups, "int4"),
            groups=groups,
        )
        return compose(batch), findings


def read_series(index: IndexFile, *, collections: Sequence[str] | None = None) -> SeriesRows:
    """Read and check the series rows of ``index`` (all, or those of ``collections``).

    Args:
        index: the file (see :func:`oncograph.sources.idc.open_index`).
        collections: IDC ``collection_id`` values to keep; ``None`` keeps every row.

    Returns:
        The rows, with the quarantined ones and the groups known.

    Raises:
        IndexFileError: the file cannot be read (a damaged page, a truncated file) or a key or group column
            cannot be converted.
    """
    wanted = [f.column for f in SERIES_FIELDS if f.column in index.columns]
    try:
        table = pq.read_table(index.path, columns=wanted)
    except (OSError, pa.ArrowException) as exc:
        raise IndexFileError(
            f"cannot read the IDC index {index.path}: {exc}",
            hint="the file is damaged; reinstall idc-index-data or pass a complete file with --index",
        ) from exc
    every = pc.is_null(pa.nulls(table.num_rows, pa.int8()))
    table = table.append_column("index_row", pc.indices_nonzero(every).cast(pa.int32()))
    in_file = tuple(sorted(str(c) for c in pc.drop_null(pc.unique(table["collection_id"])).to_pylist()))
    if collections is not None:
        keep = pa.array(list(collections), table.schema.field("collection_id").type)
        table = table.filter(pc.is_in(table["collection_id"], value_set=keep))
    table = table.combine_chunks()
    nul_columns = frozenset(c for c in table.column_names if _may_hold_nul(table[c]))
    findings = Findings()
    typed = {}
    for name in _UPFRONT:
        f = BY_NAME[name]
        if f.column in table.column_names:
            raw = table[f.column].combine_chunks()
            typed[name] = typed_column(raw, f, findings, nul=f.column in nul_columns, file=index.name)
        else:
            typed[name] = null_column(f, table.num_rows)
    blank = {
        f.column: pc.fill_null(pc.equal(pc.utf8_trim_whitespace(typed[f.name]), ""), True) for f in _KEYS
    }
    invalid = functools.reduce(pc.or_, blank.values()) if table.num_rows else pa.array([], pa.bool_())
    quarantined = _missing_keys(table, invalid, blank, index.name)
    key = pc.binary_join_element_wise(*(typed[n] for n in _GROUP_KEY), pa.scalar("\x1f", pa.large_string()))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="idc-check") as pool:
        # the repeat check runs beside the grouping; repeats are rare, so the groups are computed for the
        # complete rows and again only if some of those repeat
        check = pool.submit(
            _repeated_series, table, typed["series_instance_uid"], pc.invert(invalid), index.name
        )
        group_ids = pc.dictionary_encode(key).indices if len(key) else pa.array([], pa.int32())
        groups = _groups(group_ids, typed, pc.invert(invalid))
        repeated, repeats = check.result()
    valid = pc.invert(pc.or_(invalid, repeated))
    if repeats:
        groups = _groups(group_ids, typed, valid)
    table = table.append_column("group_id", group_ids)
    present = pc.drop_null(pc.unique(table["collection_id"])).to_pylist()
    rows = SeriesRows(
        index=index,
        table=table,
        collections=tuple(sorted(str(c) for c in present)),
        valid=valid,
        typed=typed,
        groups=groups,
        quarantined=quarantined + repeats,
        nul_columns=nul_columns,
        findings=findings,
        file_collections=in_file,
    )
    absent = [f.column for f in SERIES_FIELDS if f.column not in index.columns]
    if absent:
        rows.warnings.append(f"{index.name} has no column {', '.join(absent)}: stored as NULL")
    return rows


def _groups(group_ids: Any, typed: dict[str, Any], rows: Any) -> Any:
    """One row per group of ``rows``: its number and the smallest of each group-level value."""
    table = pa.table({"group_id": group_ids, **{n: typed[n] for n in GROUP_FIELDS}}).filter(rows)
    aggregated = table.group_by("group_id").aggregate([(n, "min") for n in GROUP_FIELDS])
    return aggregated.rename_columns(["group_id", *GROUP_FIELDS])


def _may_hold_nul(values: Any) -> bool:
    """Whether a string column's data buffer holds a NUL byte (a C-speed scan, no copy)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return False
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return any(c.buffers()[2] is not None and re.search(b"\x00", memoryview(c.buffers()[2])) for c in chunks)


def _missing_keys(table: Any, invalid: Any, blank: dict[str, Any], file: str) -> list[QuarantinedRow]:
    if not pc.any(invalid).as_py():
        return []
    flags = {column: mask.filter(invalid).to_pylist() for column, mask in blank.items()}
    count = pc.sum(invalid).as_py()
    reasons = [[f"{column} is missing" for column, rows in flags.items() if rows[i]] for i in range(count)]
    return _quarantine(table.filter(invalid), reasons, file)


def _repeated_series(table: Any, uids: Any, complete: Any, file: str) -> tuple[Any, list[QuarantinedRow]]:
    """Rows (with every key) whose ``SeriesInstanceUID`` an earlier such row already has."""
    none = pc.and_(complete, pa.scalar(False))
    present = uids.filter(complete)
    if pc.count_distinct(present).as_py() == len(present):
        return none, []
    rows = pa.table({"uid": present, "index_row": table["index_row"].filter(complete)})
    first = rows.group_by("uid").aggregate([("index_row", "min")])
    later = rows.filter(pc.invert(pc.is_in(rows["index_row"], value_set=first["index_row_min"])))
    first_of = dict(zip(first["uid"].to_pylist(), first["index_row_min"].to_pylist(), strict=True))
    repeated = pc.is_in(table["index_row"].combine_chunks(), value_set=later["index_row"])
    again = table.filter(repeated)
    reasons = [
        [f"SeriesInstanceUID repeats row {first_of[u]}"] for u in again["SeriesInstanceUID"].to_pylist()
    ]
    return repeated, _quarantine(again, reasons, file)


def _quarantine(rows: Any, reasons: list[list[str]], file: str) -> list[QuarantinedRow]:
    out = []
    for row, why in zip(rows.to_pylist(), reasons, strict=True):
        index_row = row.pop("index_row")
        row.pop("group_id", None)
        where = f"{file} > row {index_row} > collection {row.get('collection_id') or '?'}"
        out.append(QuarantinedRow(where, row.get("SeriesInstanceUID") or None, tuple(why), _json_safe(row)))
    return out


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if v is None or isinstance(v, str | int | float | bool) else str(v)) for k, v in row.items()
    }
