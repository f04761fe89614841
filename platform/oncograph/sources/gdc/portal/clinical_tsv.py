"""Portal clinical TSVs (v1 short headers, v2 dotted headers and the v2 companion files) -> case records.

A clinical TSV is a flattened join: one row per diagnosis x treatment (v2), per treatment (v1) or per
follow-up x molecular test x other clinical attribute (v2 ``follow_up.tsv``). The rows of one case are grouped
and the join is undone: each child object is de-duplicated by its GDC id (``diagnosis_id``, ``treatment_id``
...), or, when the id column is absent or null, by its ``submitter_id`` or else by its whole content; child
objects whose cells are all null are dropped (a row whose treatment columns are all ``'--`` means "no
treatment"), and each child is attached to the parent object of its own row.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from operator import itemgetter
from typing import Any, overload

from oncograph.domain.records import SharedDocument, SourceRecord
from oncograph.sources.gdc.portal import fields
from oncograph.sources.gdc.portal.fields import ColumnMap
from oncograph.sources.gdc.portal.tsv import (
    Pending,
    Row,
    Scan,
    clean,
    clean_cells,
    header_document,
    rows_document,
)

_LIST_ORDER = (*fields.TOP_LIST_ENTITIES, *fields.PARENT)
_MAX_SHOWN = 3


def column_map(header: list[str], only_entity: str | None = None) -> tuple[ColumnMap, list[str]]:
    """Map the columns of a clinical TSV to ``(entity, field)``; also return unmapped columns.

    Args:
        header: the TSV header.
        only_entity: for a v1 (short-header) companion file, the entity all non-id columns belong to.
    """
    if any("." in column for column in header) and {"cases.case_id", "cases.submitter_id"} & set(header):
        return fields.dotted_column_map(header)
    mapping = fields.short_column_map(header)
    if only_entity is not None:
        for column, (entity, field) in mapping.items():
            if entity not in ("cases", "project"):
                mapping[column] = (only_entity, field)
    return mapping, []


class _Node:
    """One clinical object being assembled, with its de-duplicated children."""

    __slots__ = ("cells", "children", "fields", "line")

    def __init__(self, columns: _Columns, cells: tuple[str | None, ...], line: int) -> None:
        self.cells = cells
        """Its cells in its columns' order (a later row with the same cells is the same object: no dict)."""
        self.fields = columns.values(cells)
        self.line = line
        self.children: dict[str, dict[Hashable, _Node]] = {}

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.fields)
        for entity, nodes in self.children.items():
            out[entity] = [node.render() for node in nodes.values()]
        return out


def _key(columns: _Columns, cells: tuple[str | None, ...]) -> tuple[Hashable, str]:
    """The de-duplication key of a child object and a label for messages."""
    ident = cells[columns.id_at] if columns.id_at is not None else None
    if ident is not None:
        return ("id", ident), ident
    submitter = cells[columns.submitter_at] if columns.submitter_at is not None else None
    if submitter is not None:
        return ("submitter_id", submitter), submitter
    return ("content", tuple(columns.values(cells).items())), "without id"


def _differences(old: dict[str, str | None], new: dict[str, str | None]) -> str:
    changed = [k for k in new if old.get(k) != new[k]]
    shown = ", ".join(f"{k}: {old.get(k)!r} vs {new[k]!r}" for k in changed[:_MAX_SHOWN])
    return shown + (f" (+{len(changed) - _MAX_SHOWN} more)" if len(changed) > _MAX_SHOWN else "")


class _Columns:
    """One entity's columns in a file: its field names and a getter of their cells from a row's cell list
    (an ``itemgetter`` over the positions: a case's rows are ~210 cells each, read for every entity)."""

    __slots__ = ("fields", "id_at", "submitter_at", "take")

    def __init__(self, entity: str, pairs: list[tuple[str, str]], position: dict[str, int]) -> None:
        self.fields = tuple(field for _, field in pairs)
        # where the id and the submitter id are (the last column of a name wins, as in a dict of the fields)
        at = {field: i for i, field in enumerate(self.fields)}
        self.id_at = at.get(fields.ID_FIELD.get(entity, ""))
        self.submitter_at = at.get("submitter_id")
        indexes = [position[column] for column, _ in pairs]
        if len(indexes) == 1:
            (only,) = indexes
            self.take: Callable[[list[str | None]], tuple[str | None, ...]] = lambda cells: (cells[only],)
        else:
            self.take = itemgetter(*indexes)

    def values(self, cells: tuple[str | None, ...]) -> dict[str, str | None]:
        """Field -> cell."""
        return dict(zip(self.fields, cells, strict=True))


class _CaseBuilder:
    """Undo the row join for the rows of one case."""

    def __init__(self, file_name: str, by_entity: dict[str, _Columns]) -> None:
        self.file_name = file_name
        self.by_entity = by_entity
        self.singles: dict[str, _Node] = {}
        self.lists: dict[str, dict[Hashable, _Node]] = {}
        self.problems: list[str] = []

    def _cells(
        self, cells: list[str | None], columns: _Columns, *, keep_empty: bool = False
    ) -> tuple[str | None, ...] | None:
        """The entity's cells in this row, or None when every one is null (unless ``keep_empty``)."""
        got = columns.take(cells)
        if not keep_empty and got.count(None) == len(got):
            return None
        return got

    def _merge(
        self, label: str, node: _Node, columns: _Columns, got: tuple[str | None, ...], line: int
    ) -> None:
        if got == node.cells:
            return
        values = columns.values(got)
        if node.fields != values:
            self.problems.append(
                f"{self.file_name} line {line}: {label} differs from line {node.line}: "
                f"{_differences(node.fields, values)}"
            )

    def add(self, row: Row) -> None:
        # only rows without a problem come here, and those have exactly the header's width
        cells = clean_cells(row.values)
        for entity in ("cases", "project", *fields.SINGLE_ENTITIES):
            columns = self.by_entity.get(entity)
            if columns is None:
                continue
            got = self._cells(cells, columns, keep_empty=entity in ("cases", "project"))
            if got is None:
                continue
            if entity in self.singles:
                self._merge(entity, self.singles[entity], columns, got, row.line)
            else:
                self.singles[entity] = _Node(columns, got, row.line)
        row_nodes: dict[str, _Node] = {}
        for entity in _LIST_ORDER:
            columns = self.by_entity.get(entity)
            if columns is None:
                continue
            got = self._cells(cells, columns)
            if got is None:
                continue
            parent_entity = fields.PARENT.get(entity)
            if parent_entity is None:
                siblings = self.lists.setdefault(entity, {})
            elif parent_entity in row_nodes:
                siblings = row_nodes[parent_entity].children.setdefault(entity, {})
            else:
                self.problems.append(
                    f"{self.file_name} line {row.line}: {entity} values without any {parent_entity} values "
                    f"in the same row"
                )
                continue
            key, label = _key(columns, got)
            node = siblings.get(key)
            if node is None:
                node = siblings[key] = _Node(columns, got, row.line)
            else:
                self._merge(f"{entity} {label}", node, columns, got, row.line)
            row_nodes[entity] = node

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        case = self.singles.get("cases")
        if case is not None:
            for name in ("case_id", "submitter_id"):
                if name in case.fields:
                    doc[name] = case.fields[name]
        project = self.singles.get("project")
        if project is not None and any(v is not None for v in project.fields.values()):
            doc["project"] = dict(project.fields)
        if case is not None:
            doc.update({k: v for k, v in case.fields.items() if k not in doc})
        for entity in fields.SINGLE_ENTITIES:
            if entity in self.singles:
                doc[entity] = dict(self.singles[entity].fields)
        for entity, nodes in self.lists.items():
            doc[entity] = [node.render() for node in nodes.values()]
        return doc


def _ids(cells: list[str], id_columns: dict[str, int]) -> tuple[str | None, str | None]:
    """A row's case UUID and submitter id (``id_columns``: field -> cell position; ``cells`` may be the
    row's first cells only)."""

    def cell(name: str) -> str | None:
        at = id_columns.get(name)
        return clean(cells[at]) if at is not None and at < len(cells) else None

    return cell("case_id"), cell("submitter_id")


class CaseRecords(Sequence[SourceRecord]):
    """The case records of a clinical TSV, each built when it is read (its rows split, the join undone): a
    reader that writes records in batches builds batch n + 1 while batch n is written, and the file's
    records are never all in memory at once. Reading a record twice builds it twice (the same record)."""

    def __init__(self, scan: Scan, groups: list[list[Pending]], build: Callable[[list[Row]], SourceRecord]):
        self._scan = scan
        self._groups = groups
        self._build = build

    def __len__(self) -> int:
        return len(self._groups)

    @overload
    def __getitem__(self, index: int) -> SourceRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[SourceRecord]: ...

    def __getitem__(self, index: int | slice) -> SourceRecord | list[SourceRecord]:
        if isinstance(index, slice):
            return [self._record(group) for group in self._groups[index]]
        return self._record(self._groups[index])

    def __iter__(self) -> Iterator[SourceRecord]:
        for group in self._groups:
            yield self._record(group)

    def _record(self, group: list[Pending]) -> SourceRecord:
        return self._build([self._scan.row(pending) for pending in group])


def case_records(
    scan: Scan, file_name: str, source: str, only_entity: str | None = None
) -> tuple[CaseRecords, list[str]]:
    """Turn a clinical TSV into one case record per case.

    Args:
        scan: the scanned TSV (its rows are grouped by case here and split when their record is built).
        file_name: the file's name, for record paths and problems.
        source: the records' source name.
        only_entity: for a v1 companion file, the entity its non-id columns belong to.

    Returns:
        The case records in order of first appearance (built as they are read), and the columns that could
        not be placed in the documents (they stay in ``raw``).
    """
    header = scan.header
    mapping, unmapped = column_map(header, only_entity)
    pairs: dict[str, list[tuple[str, str]]] = {}
    position = {column: i for i, column in enumerate(header)}
    id_columns: dict[str, int] = {}
    for column, (entity, field) in mapping.items():
        pairs.setdefault(entity, []).append((column, field))
        if entity == "cases" and field in ("case_id", "submitter_id"):
            id_columns.setdefault(field, position[column])
    by_entity = {entity: _Columns(entity, columns, position) for entity, columns in pairs.items()}
    id_width = max(id_columns.values(), default=-1) + 1
    groups: dict[Hashable, list[Pending]] = {}
    for pending in scan.pending:
        case_id, submitter = _ids(pending.first_cells(id_width), id_columns)
        key: Hashable = (
            ("case_id", case_id.lower()) if case_id else ("submitter_id", submitter or pending.line)
        )
        groups.setdefault(key, []).append(pending)

    shared = header_document(header, file_name)

    def build(rows: list[Row]) -> SourceRecord:
        return _record(rows, shared, file_name, source, by_entity, id_columns)

    return CaseRecords(scan, list(groups.values()), build), unmapped


def _record(
    rows: list[Row],
    header: SharedDocument,
    file_name: str,
    source: str,
    by_entity: dict[str, _Columns],
    id_columns: dict[str, int],
) -> SourceRecord:
    builder = _CaseBuilder(file_name, by_entity)
    problems: list[str] = []
    for row in rows:
        if row.problem is None:
            builder.add(row)
        else:
            problems.append(row.problem)
    doc = builder.document()
    case_id, submitter = next(
        (ids for ids in (_ids(row.values, id_columns) for row in rows) if ids != (None, None)), (None, None)
    )
    if "case_id" not in doc and case_id is not None:
        doc["case_id"] = case_id
    if "submitter_id" not in doc and submitter is not None:
        doc["submitter_id"] = submitter
    problems.extend(builder.problems)
    if case_id is None and submitter is None and not problems:
        problems.append("missing case_id and submitter_id")
    label = submitter or case_id or f"at line {rows[0].line}"
    bad_line = next((f" > line {row.line}" for row in rows if row.problem is not None), "")
    return SourceRecord(
        source=source,
        entity_type="case",
        entity_id=case_id.lower() if case_id else None,
        document=doc,
        raw=rows_document(header, rows),
        path=f"{file_name} > case {label}{bad_line}",
        problems=tuple(problems),
        shared=(header,),
    )
