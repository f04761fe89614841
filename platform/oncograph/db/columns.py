"""Typed column specs of the graph tables, read off the ORM models, and value coercion into them.

A GDC document field maps onto the column of the same name; coercion turns the strings and floats the
sources deliver (``"424.0"``, ``"true"``, ``"No"``) into the column's type, or reports a problem.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy import ARRAY, BigInteger, Boolean, Double, Integer, Table, Text
from sqlalchemy.dialects.postgresql import UUID

from oncograph.db.models import Base
from oncograph.db.models.base import LINEAGE_COLUMNS as GRAPH_LINEAGE

ColumnType = Literal["int", "bigint", "float", "bool", "text", "uuid", "text[]"]

PG_TYPE: Final[dict[ColumnType, str]] = {
    "int": "integer",
    "bigint": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "text": "text",
    "uuid": "uuid",
    "text[]": "text[]",
}

#: Words that GDC sources use for "no value" in fields that are numeric or boolean in the dictionary.
NULL_WORDS: Final = frozenset({"not reported", "unknown", "not applicable", "not available", "nan", ""})
TRUE_WORDS: Final = frozenset({"true", "yes", "y", "t", "1"})
FALSE_WORDS: Final = frozenset({"false", "no", "n", "f", "0"})

#: Columns every graph table has that never come from a document.
#: (``retired_release_id`` is written by the mapping too: a row seen again is un-retired.)
LINEAGE_COLUMNS: Final = frozenset(
    {"id", "created_at", "updated_at", "key_derived", "is_slide", *GRAPH_LINEAGE} - {"retired_release_id"}
)


class CoercionError(ValueError):
    """A value does not fit its column's type."""


#: A UUID already in the form ``str(uuid.UUID(...))`` gives (what GDC sends); anything else is parsed.
_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(value: Any) -> str:
    """``str(uuid.UUID(str(value)))``, without parsing a value that is already in that form.

    Raises:
        ValueError: the value is not a UUID.
    """
    if type(value) is str and len(value) == 36 and _CANONICAL_UUID.fullmatch(value):
        return value
    return str(uuid.UUID(str(value)))


#: SQLAlchemy column types and what ingestion reads them as; the first match wins (BigInteger is an Integer).
_COLUMN_TYPES: Final[tuple[tuple[type, ColumnType], ...]] = (
    (ARRAY, "text[]"),
    (UUID, "uuid"),
    (BigInteger, "bigint"),
    (Integer, "int"),
    (Double, "float"),
    (Boolean, "bool"),
    (Text, "text"),
)


def column_type(sa_type: Any) -> ColumnType:
    for sa_class, kind in _COLUMN_TYPES:
        if isinstance(sa_type, sa_class):
            return kind
    raise TypeError(f"no ingest mapping for column type {sa_type!r}")


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: Mapping[str, ColumnType]
    """Value columns filled from documents (no lineage columns, no foreign keys to other graph rows)."""


def table_spec(table_name: str, *, exclude: frozenset[str] = frozenset()) -> TableSpec:
    table: Table = Base.metadata.tables[table_name]
    cols: dict[str, ColumnType] = {}
    for col in table.columns:
        if col.name in LINEAGE_COLUMNS or col.name in exclude or col.foreign_keys:
            continue
        cols[col.name] = column_type(col.type)
    return TableSpec(table_name, cols)


def coerce(value: Any, kind: ColumnType) -> Any:
    """Coerce one delivered value to a JSON-able value of the column's type (None stays None).

    Raises:
        CoercionError: the value cannot be read as that type.
    """
    if value is None:
        return None
    if kind == "text":
        return value if isinstance(value, str) else _text(value)
    if kind == "text[]":
        if isinstance(value, list):
            return [v if isinstance(v, str) else _text(v) for v in value if v is not None]
        return [value if isinstance(value, str) else _text(value)]
    if isinstance(value, str):
        word = value.strip().lower()
        if word in NULL_WORDS:
            return None
    if kind in ("int", "bigint"):
        return _integer(value)
    if kind == "float":
        if isinstance(value, bool):
            raise CoercionError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise CoercionError(f"expected a number, got {value!r}") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise CoercionError(f"expected true/false, got {value!r}")
    if kind == "uuid":
        try:
            return canonical_uuid(value)
        except ValueError:
            raise CoercionError(f"expected a UUID, got {value!r}") from None
    raise AssertionError(kind)  # pragma: no cover


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError(f"expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CoercionError(f"expected a whole number, got {value!r}") from None
    if not number.is_integer():
        raise CoercionError(f"expected a whole number, got {value!r}")
    return int(number)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
