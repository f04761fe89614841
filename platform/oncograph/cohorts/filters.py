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

Values are read by their text, in both directions, as the GDC API (Elasticsearch) coerces them:

- a **string field** takes a string, or a JSON number or boolean meaning its text (``5`` is ``"5"``, ``2.50``
  is ``"2.5"``, ``5.0`` is ``"5"``, ``true`` is ``"true"``); NaN and infinities are refused;
- a **number field** takes a JSON number, or a string that spells one (``"20000"``, ``" 1e3 "``); a boolean
  or a string that is no number (``"old"``) is refused;
- a **boolean field** takes ``true``/``false`` or the strings ``"true"``/``"false"`` (any case); ``1`` is
  refused.

A refused value is a problem at its location (``filters.content.value[1]``), whichever door it came through
(API body, API query, CLI file).

Size is bounded before anything is typed or compiled: at most :data:`MAX_NODES` nodes (leaves and ``and``/``or``
groups), :data:`MAX_DEPTH` levels, :data:`MAX_VALUES` values in one leaf and :data:`MAX_TOTAL_VALUES` in all;
a larger filter is one problem naming the limit and is refused at once (the API answers 422 in milliseconds,
where a 20,000-leaf ``or`` once took a minute of database time). An ``in`` with many values is one node: use
it instead of an ``or`` of many ``=``.

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
MAX_NODES: Final = 1_000
"""The most nodes (leaves and ``and``/``or`` groups) a filter may have."""
MAX_DEPTH: Final = 32
"""The most levels of ``and``/``or`` nesting."""
MAX_VALUES: Final = 10_000
"""The most values of one leaf (``in`` with a value list)."""
MAX_TOTAL_VALUES: Final = 50_000
"""The most values of all leaves together (each is a bound parameter; PostgreSQL takes 65,535 a statement)."""


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


def fields_of(node: Node | None) -> list[Field]:
    """The fields a parsed filter reads, in order, each once."""
    found: dict[str, Field] = {}
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, Leaf):
            found.setdefault(current.field.name, current.field)
        else:
            stack.extend(reversed(current.children))
    return list(found.values())


_ARTICLE = {"string": "a", "integer": "an", "number": "a", "boolean": "a"}


def parse(raw: Any) -> Node | None:
    """Parse and type-check a decoded filter; ``None`` and ``{}`` mean "every patient".

    Raises:
        FilterError: every problem found, each with its location.
    """
    if raw is None or raw == {}:
        return None
    too_big = _size_problem(raw)
    if too_big is not None:
        raise FilterError([too_big])
    problems: list[Problem] = []
    node = _node(raw, "filters", problems, 0)
    if problems or node is None:
        raise FilterError(problems or [Problem("filters", "empty filter")])
    return node


def _size_problem(raw: Any) -> Problem | None:
    """The first size limit ``raw`` breaks, found by a walk that stops at the limit (it never visits more than
    MAX_NODES + 1 nodes, and leaves deeper than MAX_DEPTH to the parser's own depth problem)."""
    nodes = 0
    values = 0
    stack: list[tuple[Any, str, int]] = [(raw, "filters", 0)]
    while stack:
        item, loc, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return Problem(
                loc,
                f"the filter has more than {MAX_NODES:,} nodes (leaves and and/or groups); put the values of "
                f"one field in one 'in' leaf (up to {MAX_VALUES:,} values), or split the query",
            )
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, list):
            if depth < MAX_DEPTH:
                # reversed, so nodes are visited (and the crossing one named) in document order
                stack.extend(
                    (child, f"{loc}.content[{i}]", depth + 1)
                    for i, child in reversed(list(enumerate(content)))
                )
        elif isinstance(content, dict) and isinstance(content.get("value"), list):
            values += len(content["value"])
            if values > MAX_TOTAL_VALUES:
                return Problem(
                    f"{loc}.content.value",
                    f"the filter has more than {MAX_TOTAL_VALUES:,} values in all; split the query",
                )
    return None


def _node(raw: Any, loc: str, problems: list[Problem], depth: int) -> Node | None:
    if depth > MAX_DEPTH:
        problems.append(Problem(loc, f"nested deeper than {MAX_DEPTH} levels"))
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
    if len(values) > MAX_VALUES:
        problems.append(Problem(f"{loc}.content.value", f"more than {MAX_VALUES} values"))
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
            Problem(
                loc,
                f"value of '{field.name}' must be {_ARTICLE[field.type]} {field.type}, got {_kind(value)}{extra}",
            )
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
    if isinstance(value, int | float):
        if not math.isfinite(value):
            problems.append(Problem(loc, f"'{field.name}' is a string field, got the number {value!r}"))
            return None
        return _number_text(value)
    text = str(value)
    if "\x00" in text:
        problems.append(Problem(loc, "values cannot contain NUL characters"))
        return None
    return text


def _number_text(value: int | float) -> str:
    """A JSON number as the text a string field holds: integral numbers without a fraction (``5.0`` -> ``5``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


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
