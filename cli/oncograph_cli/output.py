"""Console output shared by every command: JSON for scripts, rich for people, one error exit.

- ``out`` prints a command's human output to **stdout** (``oncograph status | less``, ``cohort list > f``);
- ``err`` (also ``console``) prints to **stderr** what is not the result: errors, warnings, progress bars;
- ``safe`` makes text that came from users or files (cohort names, ids, file contents quoted in errors) print
  as itself: rich markup (``[bold red]``) is escaped and control characters (terminal escape sequences,
  carriage returns, bidirectional overrides) are shown as ``\\x1b``-style escapes, never sent to the terminal.
- ``print_table`` prints a command's titled table on stdout;
- ``id_column`` adds a table column that never cuts its values (case UUIDs, field names, dates): long values
  wrap onto more lines instead of ending in "…".
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

T = TypeVar("T")

# Written to a file or a pipe, rich would lay output out for 80 columns and cut table cells; a wide console
# prints every value whole (`cohort list > f`, `cohort members 1 | cat`).
_PIPED_WIDTH = 100_000


out = Console(highlight=False, width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err = Console(stderr=True, highlight=False)
console = err
"""stderr: for what is not the command's result (progress, warnings). Results go to ``out``."""

# C0 and C1 control characters and DEL, and the bidirectional embedding/override/isolate marks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: object, *, lines: bool = False) -> str:
    """``value`` as text that rich prints literally: markup escaped, control characters made visible.

    Args:
        value: anything (``str()`` is taken); None is the empty string.
        lines: keep newlines and tabs (for multi-line messages); otherwise they are escaped too, so one
            value stays on one table row.

    Examples:
        >>> safe("[bold red]x\\x1b[2J")
        '\\\\[bold red]x\\\\x1b[2J'
    """
    text = "" if value is None else str(value)
    text = (_CONTROL_BUT_LINES if lines else _CONTROL).sub(_visible, text)
    return escape(text)


def id_column(table: Table, header: str, **kwargs: Any) -> None:
    """A column whose values are never cut (they fold onto more lines when the terminal is narrow)."""
    table.add_column(header, overflow="fold", **kwargs)


def print_table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[str]], *, right: Collection[str] = ()
) -> None:
    """A titled table on stdout.

    Args:
        title: the table's title, printed as rich markup.
        columns: the column headers; long values fold onto more lines, never cut.
        rows: the cells, printed as rich markup: pass text from users or files through :func:`safe`.
        right: headers of the columns that hold numbers, aligned right.
    """
    table = Table(title=title)
    for col in columns:
        if col in right:
            table.add_column(col, justify="right")
        else:
            table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def print_rows(
    rows: Sequence[T],
    *,
    json_out: bool,
    title: str,
    columns: Sequence[str],
    cells: Callable[[T], Sequence[str]],
) -> None:
    """A listing command's result: ``rows`` as JSON for scripts, else a table of ``cells(row)`` for people
    (see :func:`print_table`)."""
    if json_out:
        print_json(rows)
    else:
        print_table(title, columns, [cells(row) for row in rows])


def print_result(payload: Any, *, json_out: bool, text: str) -> None:
    """A command's one-line result: ``payload`` as JSON for scripts, else ``text`` (rich markup) for people."""
    if json_out:
        print_json(payload)
    else:
        out.print(text)


def print_json(payload: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


def print_tsv(header: list[str], rows: list[list[Any]]) -> None:
    """Tab-separated values on stdout, for ``cut``/``join``/spreadsheets (tabs and newlines in values are
    replaced by spaces; missing values are empty)."""
    write = sys.stdout.write
    for row in [header, *rows]:
        write("\t".join(_tsv_cell(v) for v in row) + "\n")


def _tsv_cell(value: Any) -> str:
    return "" if value is None else re.sub(r"[\t\r\n]", " ", str(value))


def exit_with_error(message: str, *, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr (the message printed as itself, see :func:`safe`) and exit."""
    err.print(f"[bold red]error:[/] {safe(message, lines=True)}")
    raise typer.Exit(code)
