"""Tab-separated portal files: decoding, rows with their line numbers, null placeholders.

Portal TSVs are not quoted, but a file re-saved by another tool may be; quoted fields are parsed with the stdlib
:mod:`csv` module, and a line whose quoting is broken falls back to a plain split on tabs. A row whose width
differs from the header's (a file cut mid-row) or whose quote is never closed gets a problem, so the parser
keeps the good rows and reports the bad one. So does a row with a NUL character in a cell (PostgreSQL text
cannot hold one).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from oncograph.domain.records import SHARED, SharedDocument, content_hash

NULL_PLACEHOLDERS: Final = frozenset(
    {
        "",
        "'--",
        "--",
        "[Not Available]",
        "[Not Applicable]",
        "[Unknown]",
        "[Not Evaluated]",
        "[Discrepancy]",
    }
)
"""Cell values that mean "no value" in portal TSVs (v1/v2) and BCR Biotab files."""


_AS_NONE: Final[dict[str | None, None]] = dict.fromkeys(NULL_PLACEHOLDERS)


def clean_cells(cells: list[str]) -> list[str | None]:
    """Every cell with its null placeholders as ``None`` (one C-level pass: ``dict.get`` with the cell as its
    own default; a row of a clinical export has ~210 cells)."""
    return list(map(_AS_NONE.get, cells, cells))


def clean(value: str | None) -> str | None:
    """Return ``None`` for a null placeholder (or a missing cell), else the value as delivered."""
    if value is None or value in NULL_PLACEHOLDERS:
        return None
    return value


@dataclass(frozen=True, slots=True)
class Row:
    """One data row of a TSV file: its cells as a list beside the file's (shared) header. A clinical export is
    ~210 cells by ~4 rows a case; a column -> cell dict per row would be most of a parse's time and memory."""

    line: int
    """1-based line number in the file (the header is line 1)."""
    header: list[str] = field(repr=False, compare=False)
    """The file's column names (one list shared by every row)."""
    values: list[str]
    """The cells as delivered, in header order, up to the header's width; a short row lacks its last ones."""
    extra: list[str] = field(default_factory=list)
    """Cells beyond the header's width."""
    problem: str | None = None

    @property
    def cells(self) -> dict[str, str]:
        """Column -> cell as delivered (a new dict on each call: bind it once per row)."""
        return dict(zip(self.header, self.values, strict=False))

    def raw(self) -> dict[str, Any]:
        """The row as it was in the file, for :attr:`SourceRecord.raw`."""
        cells: dict[str, Any] = self.cells
        if self.extra:
            cells["_extra_fields"] = list(self.extra)
        return cells


HEADER_DOCUMENT: Final = "tsv_header"
"""The entity type of a TSV file's header, stored once as a document of its own (see :func:`header_document`)."""


def header_document(header: Sequence[str], file_name: str) -> SharedDocument:
    """A TSV file's header as the shared document its cases' documents name (``columns``)."""
    columns = list(header)
    return SharedDocument("columns", HEADER_DOCUMENT, columns, content_hash(columns), file_name)


def rows_document(header: SharedDocument, rows: Sequence[Row]) -> dict[str, Any]:
    """Several rows of one file as delivered, for a :attr:`SourceRecord.raw` that spans rows (a clinical TSV's
    case): the file's header named (a :func:`header_document`, stored once), each row's line number and its
    cells in file order (a short row has fewer cells; a long row's surplus cells follow). With the 210 column
    names in each case's document, the documents were twice the bytes to encode, hash, send and compress
    (ADR 0001's portal amendments). :meth:`SourceRecord.whole_raw` puts the header back (as ``columns``) and
    :func:`document_rows` gives that whole document's rows as column -> cell."""
    return {
        SHARED: {header.field: header.ref},
        "lines": [row.line for row in rows],
        "rows": [[*row.values, *row.extra] if row.extra else row.values for row in rows],
    }


def document_rows(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a whole :func:`rows_document` (its header in place, under ``columns``) as :meth:`Row.raw`
    gives them (column -> cell; surplus cells under ``_extra_fields``)."""
    columns: list[str] = raw["columns"]
    out: list[dict[str, Any]] = []
    for cells in raw["rows"]:
        row: dict[str, Any] = dict(zip(columns, cells, strict=False))
        if len(cells) > len(columns):
            row["_extra_fields"] = cells[len(columns) :]
        out.append(row)
    return out


@dataclass(frozen=True, slots=True)
class Table:
    """A parsed TSV file: its header and data rows."""

    header: list[str]
    """Column names, made unique (a repeated name gets a ``" [2]"`` suffix)."""
    rows: list[Row]


def _split(line: str) -> list[str]:
    return line.rstrip("\r\n").split("\t")


def split_lines(text: str) -> list[str]:
    """Split on ``\\n`` only (keeping it), so that exotic Unicode line breaks inside a cell survive."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def first_line_columns(text: str) -> list[str]:
    """The header columns (the first non-blank line) of a TSV text."""
    for line in split_lines(text):
        if line.strip():
            return _split(line)
    return []


def _unique(header: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    names: list[str] = []
    for name in header:
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name} [{count}]")
    return names


def _parse_quoted(lines: list[str], start: int) -> tuple[int, list[str] | None, bool]:
    """Parse one CSV record from ``lines[start:]``: (lines consumed, cells or None, hit end of data)."""
    consumed = 0

    def feed() -> Iterator[str]:
        nonlocal consumed
        for index in range(start, len(lines)):
            consumed += 1
            yield lines[index]

    reader = csv.reader(feed(), delimiter="\t", strict=True)
    try:
        cells = next(reader)
    except csv.Error as exc:
        return consumed, None, "unexpected end of data" in str(exc)
    except StopIteration:  # pragma: no cover - start is always a non-blank line
        return consumed, None, False
    return consumed, cells, False


def _physical_rows(
    lines: list[str], start: int, width: int
) -> Iterator[tuple[int, str | list[str], str | None]]:
    """Yield (line number, content, note) for each record from ``lines[start:]``: the content is an unquoted
    line without its line break (split on demand: see :class:`Pending`) or the cells of a quoted record."""
    index = start
    while index < len(lines):
        line = lines[index]
        number = index + 1
        if not line.strip():
            index += 1
            continue
        if '"' not in line:
            index += 1
            yield number, line.rstrip("\r\n"), None
            continue
        consumed, cells, at_eof = _parse_quoted(lines, index)
        if cells is not None and (consumed == 1 or len(cells) == width):
            index += consumed
            yield number, cells, None
            continue
        # Broken or stray quoting: read this line as plain unquoted cells.
        index += 1
        plain = _split(line)
        cut = at_eof and any(c.startswith('"') and (len(c) == 1 or not c.endswith('"')) for c in plain)
        yield number, plain, "a quoted value is never closed (cut-off quote)" if cut else None


def _cells_of(content: str | list[str]) -> list[str]:
    return content.split("\t") if isinstance(content, str) else content


class Pending(NamedTuple):
    """A data row found by :func:`scan_table`, its cells not split yet (splitting ~210 cells a row is most of
    a parse: a reader that groups rows first splits each row when it builds that row's record)."""

    line: int
    """1-based line number in the file."""
    content: str | list[str]
    """The unquoted line without its line break, or the cells of a quoted record."""
    problem: str | None

    def cells(self) -> list[str]:
        """Every cell as delivered (more or fewer than the header's width when the row has a problem)."""
        return _cells_of(self.content)

    def first_cells(self, count: int) -> list[str]:
        """The first ``count`` cells (fewer when the row is shorter), without splitting the rest."""
        content = self.content
        return content.split("\t", count)[:count] if isinstance(content, str) else content[:count]


@dataclass(frozen=True, slots=True)
class Scan:
    """A TSV file's header and its data rows, found but not split (see :func:`scan_table`)."""

    header: list[str]
    """Column names, made unique (a repeated name gets a ``" [2]"`` suffix)."""
    pending: list[Pending]

    def row(self, pending: Pending) -> Row:
        """The row, split into its cells."""
        cells = pending.cells()
        width = len(self.header)
        if len(cells) <= width:
            return Row(pending.line, self.header, cells, problem=pending.problem)
        return Row(pending.line, self.header, cells[:width], cells[width:], pending.problem)

    def table(self) -> Table:
        """Every row split into its cells."""
        return Table(header=self.header, rows=[self.row(p) for p in self.pending])


def scan_table(text: str, file_name: str) -> Scan:
    """Find a TSV text's header and data rows, and each row's problem, without splitting the rows.

    A row is cut short, too long or badly quoted (it carries a problem), or holds a NUL character (PostgreSQL
    text cannot hold one). An unquoted row's width is its tab count: no cell is made until a reader asks.
    """
    lines = split_lines(text)
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        return Scan(header=[], pending=[])
    header = _unique(_split(lines[header_index]))
    width = len(header)
    pending: list[Pending] = []
    has_nul = "\x00" in text
    for number, content, note in _physical_rows(lines, header_index + 1, width):
        problem = None
        count = content.count("\t") + 1 if isinstance(content, str) else len(content)
        if note is not None:
            problem = f"{file_name} line {number}: {note}"
        elif count < width:
            problem = (
                f"{file_name} line {number}: row has {count} of {width} fields (cut short: truncated file?)"
            )
        elif count > width:
            problem = f"{file_name} line {number}: row has {count} fields, the header has {width}"
        elif has_nul and "\x00" in (content if isinstance(content, str) else "".join(content)):
            cells = _cells_of(content)
            column = next(name for name, cell in zip(header, cells, strict=False) if "\x00" in cell)
            problem = (
                f"{file_name} line {number}: column {column!r} holds a NUL character (\\x00), which cannot "
                "be stored; remove it from the file and import it again"
            )
        pending.append(Pending(number, content, problem))
    return Scan(header=header, pending=pending)


def read_table(text: str, file_name: str) -> Table:
    """Parse a TSV text into a :class:`Table` (:func:`scan_table`, every row split into its cells).

    Args:
        text: the decoded file content.
        file_name: the file's name, used in problem messages.

    Returns:
        The header and every data row; rows that are cut short, too long or badly quoted carry a problem.
    """
    return scan_table(text, file_name).table()
