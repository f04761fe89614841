"""The index's data: the live patients (with their projects) and one column per field, loaded from PostgreSQL.

A field's column is its source's rows under the unrestricted scope (nulls dropped: no operator of the grammar
matches a null, and facets skip them), dictionary-encoded:

- ``pid``: the row's patient, as a position in :attr:`Patients.ids` (rows of patients that are not live are
  dropped: no cohort holds them);
- ``code``: the row's value, as a position in ``values``, the field's distinct values in PostgreSQL's own
  order (``ORDER BY value`` under the database collation), so ties in facet counts break as SQL breaks them;
- ``restricted``: the rows a scope sees only with a grant for the patient's project (controlled files), or
  None when the source has none.

Rows keep their multiplicity (a patient with two diagnoses aged 20000 has two rows): histogram statistics
count values, not patients, as the SQL engine does. Rows travel by ``COPY ... TO STDOUT (FORMAT csv)`` and are
parsed by pyarrow, which is several times faster than fetching Python tuples.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from numpy.typing import NDArray
from sqlalchemy import ARRAY, Connection, false, select, text
from sqlalchemy.dialects import postgresql

from oncograph.access import Scope
from oncograph.cohorts.fields import Field
from oncograph.cohorts.values import PATIENT, PROJECT
from oncograph.lineage.releases import patient_release_queries

_EVERYTHING = Scope.everything("index")
#: A scope with a grant, compiled to tell scope-free sources from those that depend on the scope.
_PROBE = Scope(principal="index-probe", role="viewer", granted_projects=frozenset({"INDEX-PROBE"}))
_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}


@dataclass(frozen=True, slots=True)
class Patients:
    ids: NDArray[np.int64]
    """Row ids of the live patients, ascending."""
    project: NDArray[np.int32]
    """Each patient's project as a position in ``project_ids`` (-1: none)."""
    project_ids: list[str]
    controlled: NDArray[np.bool_]
    """Per project: marked controlled by an admin."""
    case_ids: NDArray[np.bytes_]
    """Each patient's GDC case UUID (lower-case text, empty when none; a cohort version's member hash is made of
    them)."""
    case_order: NDArray[np.int64]
    """Positions in the order of their case UUIDs (a member hash takes them sorted)."""

    def positions(self, pids: NDArray[np.int64]) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
        """Positions of row ids in :attr:`ids`, and which of them are live patients at all."""
        if not len(self.ids):
            return np.zeros(len(pids), np.int32), np.zeros(len(pids), np.bool_)
        at = np.searchsorted(self.ids, pids)
        at = np.minimum(at, len(self.ids) - 1)
        return at.astype(np.int32), self.ids[at] == pids


@dataclass(frozen=True, slots=True)
class Column:
    """A field's rows: patient position and value code, ordered by patient, then value (so a patient's rows are
    adjacent, and a facet counts distinct patients in one pass without a sort)."""

    field: Field
    pid: NDArray[np.int32]
    code: NDArray[np.int32]
    restricted: NDArray[np.bool_] | None
    values: list[Any]
    """The distinct values, in PostgreSQL's order."""
    numbers: NDArray[Any] | None
    """``values`` as an int64/float64 array (numeric fields)."""
    unique_pairs: bool
    """No (patient, value) pair repeats, so counting rows counts patients."""
    distinct: tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.bool_] | None] | None = None
    """When pairs repeat: the distinct (patient, value) pairs, restricted only when every row of the pair is
    (what terms facets of nested fields count), so no request has to find them again."""


def indexable(field: Field) -> bool:
    """Whether the index can answer for ``field`` exactly as SQL does: its source is the same under every scope
    or says which rows a grant unlocks, and its values are scalars."""
    src = field.source(_EVERYTHING)
    if isinstance(src.value.type, ARRAY):
        return False
    if src.restricted is not None:
        return True
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(src.select().compile(dialect=dialect)) == str(
        field.source(_PROBE).select().compile(dialect=dialect)
    )


def load_patients(conn: Connection) -> Patients:
    projects = conn.execute(
        select(PROJECT.c.id, PROJECT.c.project_id, PROJECT.c.controlled).order_by(PROJECT.c.id)
    ).all()
    position = {row.id: i for i, row in enumerate(projects)}
    rows = conn.execute(
        select(PATIENT.c.id, PATIENT.c.project_id, PATIENT.c.case_id)
        .where(PATIENT.c.retired_release_id.is_(None))
        .order_by(PATIENT.c.id)
    ).all()
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    project = np.fromiter(
        (position.get(r[1], -1) if r[1] is not None else -1 for r in rows), np.int32, len(rows)
    )
    case_ids = (
        np.array([b"" if r[2] is None else str(r[2]).encode() for r in rows], np.bytes_)
        if rows
        else np.zeros(0, "S36")
    )
    return Patients(
        ids,
        project,
        [str(r.project_id) for r in projects],
        np.array([bool(r.controlled) for r in projects], np.bool_),
        case_ids,
        np.argsort(case_ids, kind="stable"),
    )


@dataclass(frozen=True, slots=True)
class Releases:
    """The source releases of each live patient's live rows (:func:`oncograph.lineage.releases.
    patient_release_queries`), for freezing cohort versions: one (patient, release) pair per row, each pair
    once (a patient's rows mostly share a few releases), the release as a code into ``ids``."""

    pid: NDArray[np.int32]
    code: NDArray[np.int32]
    ids: NDArray[np.int64]

    def of(self, chosen: NDArray[np.bool_]) -> list[int]:
        """The release ids (ascending) of the chosen patients' rows."""
        present = np.bincount(self.code[chosen[self.pid]], minlength=len(self.ids)) > 0
        found: list[int] = self.ids[present].tolist()
        return found


_PAIR_GRID_CELLS = 256 * 1024 * 1024
"""Largest patients x releases grid (bytes) that :func:`load_releases` marks pairs in instead of sorting them."""


def load_releases(conn: Connection, patients: Patients) -> Releases:
    tables = [_copy(conn, text(q), pa.int64(), columns=("pid", "value")) for q in patient_release_queries()]
    table = pa.concat_tables(tables)
    at, live = patients.positions(table.column("pid").to_numpy().astype(np.int64, copy=False))
    release = table.column("value").to_numpy().astype(np.int64, copy=False)[live]
    ids, code = np.unique(release, return_inverse=True)
    if len(patients.ids) * len(ids) <= _PAIR_GRID_CELLS:  # releases are few: mark a grid, no sort
        grid = np.zeros((len(patients.ids), len(ids)), np.bool_)
        grid[at[live], code] = True
        pid, distinct = np.nonzero(grid)
        return Releases(pid.astype(np.int32), distinct.astype(np.int32), ids)
    pairs = np.unique(at[live].astype(np.int64) * len(ids) + code)
    return Releases((pairs // len(ids)).astype(np.int32), (pairs % len(ids)).astype(np.int32), ids)


def load_column(conn: Connection, field: Field, patients: Patients) -> Column:
    src = field.source(_EVERYTHING)
    restricted = src.restricted if src.restricted is not None else false()
    query = (
        select(src.pid.label("pid"), src.value.label("value"), restricted.label("r"))
        .select_from(*src.froms)
        .where(*src.where, src.value.is_not(None))
    )
    table = _copy(conn, query, _ARROW_TYPES[field.type])
    pid_rows = table.column("pid").to_numpy().astype(np.int64, copy=False)
    at, live = patients.positions(pid_rows)
    encoded = pc.dictionary_encode(table.column("value").combine_chunks())
    distinct = encoded.dictionary.to_pylist()
    order = _pg_order(conn, field, distinct)
    rank = np.empty(len(distinct), np.int32)
    rank[order] = np.arange(len(distinct), dtype=np.int32)
    codes = rank[encoded.indices.to_numpy(zero_copy_only=False)] if len(distinct) else np.zeros(0, np.int32)
    flags = table.column("r").to_numpy(zero_copy_only=False).astype(np.bool_)
    pid, code, flag = at[live], codes[live], flags[live]
    values = [distinct[i] for i in order]
    numbers = (
        np.array(values, np.int64 if field.type == "integer" else np.float64)
        if field.facet == "histogram"
        else None
    )
    pairs = pid.astype(np.int64) * max(1, len(values)) + code
    order = np.argsort(pairs, kind="stable")
    pid, code, flag, pairs = pid[order], code[order], flag[order], pairs[order]
    unique, first, counts = np.unique(pairs, return_index=True, return_counts=True)
    row_restricted = flag if flag.any() else None
    distinct = None
    if len(unique) != len(pairs):
        pair_restricted = None
        if row_restricted is not None:
            starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
            pair_restricted = np.logical_and.reduceat(row_restricted, starts)
        distinct = (pid[first], code[first].astype(np.int32, copy=False), pair_restricted)
    return Column(
        field,
        pid,
        code.astype(np.int32, copy=False),
        row_restricted,
        values,
        numbers,
        distinct is None,
        distinct,
    )


def _copy(
    conn: Connection, query: Any, value_type: pa.DataType, columns: tuple[str, ...] = ("pid", "value", "r")
) -> pa.Table:
    """The rows of ``query`` (registry SQL: its few literals are the registry's own) as an arrow table."""
    sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))  # type: ignore[no-untyped-call]
    buffer = io.BytesIO()
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:  # type: ignore[union-attr]
        for block in copy:
            buffer.write(block)
    types = {"pid": pa.int64(), "value": value_type, "r": pa.bool_()}
    if not buffer.tell():
        return pa.table({c: pa.array([], types[c]) for c in columns})
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=list(columns)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={c: types[c] for c in columns},
            true_values=["t"],
            false_values=["f"],
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _pg_order(conn: Connection, field: Field, distinct: list[Any]) -> NDArray[np.intp]:
    """Positions of ``distinct`` in PostgreSQL's order of them (text by the database collation)."""
    if not distinct:
        return np.zeros(0, np.intp)
    if field.type != "string":
        return np.argsort(np.array(distinct), kind="stable")
    rows = conn.execute(
        text("SELECT i FROM unnest(CAST(:v AS text[])) WITH ORDINALITY AS t(v, i) ORDER BY v"),
        {"v": distinct},
    )
    return np.fromiter((int(r[0]) - 1 for r in rows), np.intp, len(distinct))
