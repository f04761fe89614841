"""The GDC ``filters`` grammar, parsed and evaluated over in-memory documents.

A filter node is ``{"op": OP, "content": ...}`` (GDC_API.md §3). Semantics on multi-valued fields (a path that
crosses a list, e.g. ``diagnoses.classification_of_tumor`` on a case with two diagnoses) follow Elasticsearch,
which the real API runs on:

- ``=`` / ``in``: the document matches when **any** of its values equals **any** filter value. String values may
  use ``*`` as a wildcard (``"*Adenocarcinoma"``). Comparison is case-sensitive. Numbers compare numerically
  (``1177`` equals ``1177.0`` and the string ``"1177"``); booleans equal ``"true"``/``"false"``.
- ``!=`` and ``exclude``: the document is removed only when it has values and **all** of them match (a case with
  one primary and one metastasis diagnosis is kept by ``exclude metastasis``); documents without the field stay.
- ``excludeifany``: the document is removed when **any** value matches.
- ``<`` ``<=`` ``>`` ``>=``: any value satisfies the comparison. A numeric filter value compares with numeric
  values, a non-numeric string with string values (ISO dates compare correctly as strings).
- ``is`` (value ``MISSING`` or no value): the path has no non-null value. ``not``: it has at least one. The real
  API's quirk "a field is not missing when its parent is missing" is *not* reproduced.
- ``and`` / ``or``: lists of nodes; an empty ``and`` matches everything, an empty ``or`` nothing.

Field paths may carry the endpoint prefix (``cases.project.project_id`` on ``/cases``). Unknown fields are not an
error here (the real API rejects them); they simply have no values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

LEAF_OPS: Final = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "exclude", "excludeifany", "is", "not"})
BOOL_OPS: Final = frozenset({"and", "or"})
COMPARE_OPS: Final = frozenset({"<", "<=", ">", ">="})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class FilterError(ValueError):
    """A ``filters`` value that does not follow the GDC grammar; the message says where and why."""


class _Complex:
    """Marker for a leaf value that is an object or list (present, but never equal to a filter value)."""

    def __repr__(self) -> str:
        return "<object>"


COMPLEX: Final = _Complex()

Column = Sequence[tuple[Any, ...]]
"""Normalised non-null values of one field path, one tuple per document (see :func:`normalise`)."""


@dataclass(frozen=True, slots=True)
class Leaf:
    """A field operation: ``op`` on ``path`` (split on dots, endpoint prefix removed) with ``values``."""

    op: str
    path: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class BoolNode:
    """``and`` / ``or`` over child nodes."""

    op: str
    children: tuple[Leaf | BoolNode, ...]


Node = Leaf | BoolNode


def strip_prefix(endpoint: str, field: str) -> tuple[str, ...]:
    """Split a dotted field path and drop a leading endpoint name (``cases.x`` on /cases → ``("x",)``)."""
    parts = tuple(p for p in field.strip().split(".") if p)
    if len(parts) > 1 and parts[0] == endpoint:
        parts = parts[1:]
    return parts


def normalise(value: Any) -> Any:
    """Map a document value to its comparison form: bool → ``"true"``/``"false"``, number → float."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        return value
    return COMPLEX


def leaf_values(document: dict[str, Any], path: Sequence[str]) -> list[Any]:
    """Every value at ``path`` in ``document``, walking into lists at any level; lists at the leaf are flattened."""
    current: list[Any] = [document]
    for part in path:
        found: list[Any] = []
        for obj in current:
            if isinstance(obj, dict) and part in obj:
                _flatten_into(found, obj[part])
        current = found
        if not current:
            break
    return current


def _flatten_into(out: list[Any], value: Any) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten_into(out, item)
    else:
        out.append(value)


def column_entry(document: dict[str, Any], path: Sequence[str]) -> tuple[Any, ...]:
    """The normalised non-null values of ``path`` in one document (one :data:`Column` entry)."""
    return tuple(normalise(v) for v in leaf_values(document, path) if v is not None)


def parse_filters(raw: Any, endpoint: str) -> Node | None:
    """Parse a decoded ``filters`` object into a node tree; ``None``/``{}`` mean "no filter".

    Raises:
        FilterError: the object breaks the grammar; the message names the offending node.
    """
    if raw is None or raw == {}:
        return None
    return _parse_node(raw, endpoint, "filters")


def _parse_node(raw: Any, endpoint: str, where: str) -> Node:
    if not isinstance(raw, dict):
        raise FilterError(
            f"{where}: a filter node must be an object with 'op' and 'content', got {_kind(raw)}"
        )
    op_raw = raw.get("op")
    if not isinstance(op_raw, str):
        raise FilterError(f"{where}: 'op' is missing or not a string")
    op = op_raw.strip().lower()
    content = raw.get("content")
    if op in BOOL_OPS:
        if not isinstance(content, list):
            raise FilterError(f"{where}: op '{op}' needs 'content' to be a list of filter nodes")
        children = tuple(_parse_node(c, endpoint, f"{where}.content[{i}]") for i, c in enumerate(content))
        return BoolNode(op, children)
    if op not in LEAF_OPS:
        known = ", ".join(sorted(LEAF_OPS | BOOL_OPS))
        raise FilterError(f"{where}: unknown op '{op_raw}' (known ops: {known})")
    if not isinstance(content, dict):
        raise FilterError(f"{where}: op '{op}' needs 'content' to be an object with 'field' and 'value'")
    field = content.get("field")
    if not isinstance(field, str) or not strip_prefix(endpoint, field):
        raise FilterError(f"{where}: 'content.field' is missing or not a dotted field name")
    path = strip_prefix(endpoint, field)
    if op in ("is", "not"):
        value = content.get("value", "MISSING")
        if not (isinstance(value, str) and value.upper() == "MISSING"):
            raise FilterError(f"{where}: op '{op}' only takes the value \"MISSING\" (or no value)")
        return Leaf(op, path, ())
    if "value" not in content:
        raise FilterError(f"{where}: op '{op}' on '{field}' needs a 'value'")
    raw_values = content["value"]
    values = tuple(raw_values) if isinstance(raw_values, list) else (raw_values,)
    if not values:
        raise FilterError(f"{where}: op '{op}' on '{field}' has an empty value list")
    for v in values:
        if v is None or isinstance(v, dict | list):
            raise FilterError(
                f"{where}: value {v!r} of '{field}' must be a string, number or boolean"
                + (" (use op 'is' with MISSING for absent fields)" if v is None else "")
            )
    if op in COMPARE_OPS and len(values) != 1:
        raise FilterError(f"{where}: op '{op}' compares with exactly one value, got {len(values)}")
    if op in COMPARE_OPS and isinstance(values[0], bool):
        raise FilterError(f"{where}: op '{op}' cannot compare '{field}' with a boolean")
    return Leaf(op, path, values)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def evaluate(node: Node, column: Callable[[tuple[str, ...]], Column], size: int) -> set[int]:
    """Indices (``0 <= i < size``) of the documents matching ``node``; ``column(path)`` supplies field values."""
    if isinstance(node, BoolNode):
        if node.op == "and":
            result = set(range(size))
            for child in node.children:
                if not result:
                    break
                result &= evaluate(child, column, size)
            return result
        union: set[int] = set()
        for child in node.children:
            union |= evaluate(child, column, size)
        return union
    values = column(node.path)
    if node.op == "is":
        return {i for i, vals in enumerate(values) if not vals}
    if node.op == "not":
        return {i for i, vals in enumerate(values) if vals}
    if node.op in COMPARE_OPS:
        test = _comparison(node.op, node.values[0])
        return {i for i, vals in enumerate(values) if any(test(v) for v in vals)}
    matches = _equality(node.values)
    if node.op in ("=", "in"):
        return {i for i, vals in enumerate(values) if any(matches(v) for v in vals)}
    if node.op == "excludeifany":
        return {i for i, vals in enumerate(values) if not any(matches(v) for v in vals)}
    # "!=" and "exclude": removed only when every value matches
    return {i for i, vals in enumerate(values) if not vals or not all(matches(v) for v in vals)}


def _equality(filter_values: Sequence[Any]) -> Callable[[Any], bool]:
    exact: set[Any] = set()
    patterns: list[re.Pattern[str]] = []
    for fv in filter_values:
        if isinstance(fv, bool):
            exact.add("true" if fv else "false")
        elif isinstance(fv, int | float):
            exact.add(float(fv))
            exact.add(str(fv))
            if isinstance(fv, float) and fv.is_integer():
                exact.add(str(int(fv)))
        elif isinstance(fv, str):
            if "*" in fv:
                patterns.append(re.compile(".*".join(re.escape(p) for p in fv.split("*")), re.DOTALL))
            exact.add(fv)
            number = _as_number(fv)
            if number is not None:
                exact.add(number)

    def matches(value: Any) -> bool:
        if value is COMPLEX:
            return False
        if value in exact:
            return True
        return isinstance(value, str) and any(p.fullmatch(value) for p in patterns)

    return matches


def _as_number(text: str) -> float | None:
    if not _NUMBER.match(text.strip()):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _comparison(op: str, filter_value: Any) -> Callable[[Any], bool]:
    target: Any
    if isinstance(filter_value, int | float):
        target = float(filter_value)
    else:
        number = _as_number(str(filter_value))
        target = number if number is not None else str(filter_value)
    want_number = isinstance(target, float)

    def test(value: Any) -> bool:
        if value is COMPLEX:
            return False
        if want_number:
            if isinstance(value, float):
                v: Any = value
            elif isinstance(value, str):
                parsed = _as_number(value)
                if parsed is None:
                    return False
                v = parsed
            else:
                return False
        elif isinstance(value, str) and value not in ("true", "false"):
            v = value
        else:
            return False
        if op == "<":
            return bool(v < target)
        if op == "<=":
            return bool(v <= target)
        if op == ">":
            return bool(v > target)
        return bool(v >= target)

    return test
