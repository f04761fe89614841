"""GDC ``filters`` over the graph: parsed against the field registry, then compiled to one SQL predicate.

The grammar is the GDC API's (``{"op": "and"|"or", "content": [...]}``; leaves ``{"op": OP, "content":
{"field": F, "value": V}}``; GDC_API.md §3), so a filter copied from the GDC portal works unchanged. Semantics
on nested fields (a patient with several diagnoses, samples, files ...), as the GDC API (Elasticsearch) has them:

- ``=`` / ``in``: the patient matches when **any** of its values equals **any** filter value; ``*`` in a
  string value is a wildcard (``"*Adenocarcinoma"``); comparison is case-sensitive.
- ``!=`` / ``exclude``: the patient is removed only when it has values and **all** of them match (a case with
  one primary and one metastasis diagnosis stays under ``exclude metastasis``); patients without the field stay.
- ``excludeifany``: the patient is removed when **any** value matches.
- ``<`` ``<=`` ``>`` ``>=``: **any** value satisfies the comparison (one filter value).
- ``is`` (value ``MISSING``): the patient has no value of the field; ``not``: it has at least one.
- ``and`` / ``or``: an empty ``and`` matches every patient, an empty ``or`` none.

Every value is a bound parameter; field names come only from the registry (an unknown name is an error), so
nothing of a filter reaches the SQL text. Problems are collected with their location
(``filters.content[1].content.value``) and raised together as :class:`FilterError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, FromClause, and_, false, not_, or_, select, true

from oncograph.access import Scope
from oncograph.cohorts.fields import PATIENT, Field, get_field, suggest
from oncograph.errors import ValidationError

LEAF_OPS: Final = frozenset({"=", "!=", "<", "<=", ">", ">=", "in", "exclude", "excludeifany", "is", "not"})
BOOL_OPS: Final = frozenset({"and", "or"})
COMPARE_OPS: Final = frozenset({"<", "<=", ">", ">="})
_NUMBER = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")
_MAX_DEPTH = 32
_MAX_VALUES = 10_000


@dataclass(frozen=True, slots=True)
class Problem:
    loc: str
    msg: str

    def to_json(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}


class FilterError(ValidationError):
    """A filter that is malformed, names an unknown field, or gives a value of the wrong type."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(
            f"invalid filter at {first.loc}: {first.msg}{more}",
            hint="filters follow the GDC grammar {'op': 'and', 'content': [{'op': 'in', 'content': "
            "{'field': 'project.project_id', 'value': ['TCGA-BRCA']}}]}; GET /fields lists the fields",
        )


@dataclass(frozen=True, slots=True)
class Leaf:
    op: str
    field: Field
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class BoolNode:
    op: str
    children: tuple[Node, ...]


Node = Leaf | BoolNode


def parse(raw: Any) -> Node | None:
    """Parse and type-check a decoded filter; ``None`` and ``{}`` mean "every patient".

    Raises:
        FilterError: every problem found, each with its location.
    """
    if raw is None or raw == {}:
        return None
    problems: list[Problem] = []
    node = _node(raw, "filters", problems, 0)
    if problems or node is None:
        raise FilterError(problems or [Problem("filters", "empty filter")])
    return node


def fields_of(node: Node | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, Leaf):
        return {node.field.name}
    return set().union(*(fields_of(c) for c in node.children)) if node.children else set()


def _node(raw: Any, loc: str, problems: list[Problem], depth: int) -> Node | None:
    if depth > _MAX_DEPTH:
        problems.append(Problem(loc, f"nested deeper than {_MAX_DEPTH} levels"))
        return None
    if not isinstance(raw, dict):
        problems.append(
            Problem(loc, f"a filter node must be an object with 'op' and 'content', got {_kind(raw)}")
        )
        return None
    extra = set(raw) - {"op", "content"}
    if extra:
        problems.append(Problem(loc, f"unexpected keys {sorted(extra)} (a node has only 'op' and 'content')"))
    op_raw = raw.get("op")
    if not isinstance(op_raw, str):
        problems.append(Problem(f"{loc}.op", "'op' is missing or not a string"))
        return None
    op = op_raw.strip().lower()
    content = raw.get("content")
    if op in BOOL_OPS:
        if not isinstance(content, list):
            problems.append(Problem(f"{loc}.content", f"op '{op}' needs a list of filter nodes"))
            return None
        children = [_node(c, f"{loc}.content[{i}]", problems, depth + 1) for i, c in enumerate(content)]
        return BoolNode(op, tuple(c for c in children if c is not None))
    if op not in LEAF_OPS:
        known = ", ".join(sorted(LEAF_OPS | BOOL_OPS))
        problems.append(Problem(f"{loc}.op", f"unknown op {op_raw!r} (known: {known})"))
        return None
    if not isinstance(content, dict):
        problems.append(Problem(f"{loc}.content", f"op '{op}' needs an object with 'field' and 'value'"))
        return None
    name = content.get("field")
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem(f"{loc}.content.field", "'field' is missing or not a string"))
        return None
    field = get_field(name)
    if field is None:
        close = suggest(name)
        hint = f"; did you mean {', '.join(close)}?" if close else "; GET /fields lists the fields"
        problems.append(Problem(f"{loc}.content.field", f"unknown field {name[:200]!r}{hint}"))
        return None
    if op in ("is", "not"):
        value = content.get("value", "MISSING")
        if not (isinstance(value, str) and value.upper() == "MISSING"):
            problems.append(Problem(f"{loc}.content.value", f"op '{op}' only takes the value \"MISSING\""))
            return None
        return Leaf(op, field, ())
    if "value" not in content:
        problems.append(Problem(f"{loc}.content.value", f"op '{op}' on '{field.name}' needs a 'value'"))
        return None
    raw_values = content["value"]
    listed = isinstance(raw_values, list)
    values = list(raw_values) if listed else [raw_values]
    if not values:
        problems.append(
            Problem(f"{loc}.content.value", f"op '{op}' on '{field.name}' has an empty value list")
        )
        return None
    if len(values) > _MAX_VALUES:
        problems.append(Problem(f"{loc}.content.value", f"more than {_MAX_VALUES} values"))
        return None
    if op in COMPARE_OPS and len(values) != 1:
        problems.append(Problem(f"{loc}.content.value", f"op '{op}' compares with exactly one value"))
        return None
    typed: list[Any] = []
    for i, v in enumerate(values):
        where = f"{loc}.content.value[{i}]" if listed else f"{loc}.content.value"
        coerced = _coerce(field, op, v, where, problems)
        if coerced is not None:
            typed.append(coerced)
    if len(typed) != len(values):
        return None
    return Leaf(op, field, tuple(typed))


def _coerce(field: Field, op: str, value: Any, loc: str, problems: list[Problem]) -> Any:
    if value is None or isinstance(value, dict | list):
        extra = " (use op 'is' with MISSING for absent values)" if value is None else ""
        problems.append(
            Problem(loc, f"value of '{field.name}' must be a {field.type}, got {_kind(value)}{extra}")
        )
        return None
    if field.type in ("integer", "number"):
        if isinstance(value, bool) or not (
            isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value))
        ):
            problems.append(Problem(loc, f"'{field.name}' is a number field, got {str(value)[:100]!r}"))
            return None
        number = float(value)
        if not math.isfinite(number):
            problems.append(Problem(loc, f"'{field.name}' needs a finite number"))
            return None
        return int(number) if number.is_integer() and abs(number) < 2**63 else number
    if field.type == "boolean":
        if op in COMPARE_OPS:
            problems.append(Problem(loc, f"op '{op}' cannot compare the boolean field '{field.name}'"))
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        problems.append(Problem(loc, f"'{field.name}' is a boolean field, got {str(value)[:100]!r}"))
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if "\x00" in text:
        problems.append(Problem(loc, "values cannot contain NUL characters"))
        return None
    return text


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# -- compilation ----------------------------------------------------------------------------------------------


def compile_filter(node: Node | None, scope: Scope, patient: FromClause = PATIENT) -> ColumnElement[bool]:
    """A predicate on ``patient`` rows (correlated subqueries); it does not include visibility."""
    if node is None:
        return true()
    if isinstance(node, BoolNode):
        parts = [compile_filter(c, scope, patient) for c in node.children]
        if node.op == "and":
            return and_(true(), *parts)
        return or_(false(), *parts)
    return _leaf(node, scope, patient)


def _leaf(leaf: Leaf, scope: Scope, patient: FromClause) -> ColumnElement[bool]:
    src = leaf.field.source(scope)

    def exists(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return (
            select(src.pid)
            .select_from(*src.froms)
            .where(*src.where, src.pid == patient.c.id, *conditions)
            .exists()
        )

    value = src.value
    present = value.is_not(None)
    op = leaf.op
    if op == "is":
        return not_(exists(present))
    if op == "not":
        return exists(present)
    if op in COMPARE_OPS:
        bound = leaf.values[0]
        compare = {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound}[op]
        return exists(present, compare)
    match = _match(leaf, value)
    if op in ("=", "in"):
        return exists(match)
    if op == "excludeifany":
        return not_(exists(match))
    # "!=" / "exclude": removed only when it has values and all of them match.
    return or_(not_(exists(match)), exists(present, not_(match)))


def _match(leaf: Leaf, value: ColumnElement[Any]) -> ColumnElement[bool]:
    if leaf.field.type == "boolean":
        return or_(*[value.is_(v) for v in dict.fromkeys(leaf.values)])
    plain = [v for v in leaf.values if not (isinstance(v, str) and "*" in v)]
    patterns = [v for v in leaf.values if isinstance(v, str) and "*" in v]
    parts: list[ColumnElement[bool]] = []
    if plain:
        parts.append(value.in_(list(dict.fromkeys(plain))))
    for pattern in dict.fromkeys(patterns):
        like = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
        parts.append(value.like(like, escape="\\"))
    return or_(*parts) if len(parts) > 1 else parts[0]
