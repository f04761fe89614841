"""Parsed GDC filters evaluated over the index's columns: one boolean per live patient, with the semantics of
:mod:`oncograph.cohorts.filters` (any value for ``=``/``in``/comparisons, all values for ``!=``/``exclude``,
any value for ``excludeifany``, presence for ``is``/``not``), operator by operator on the field's dictionary of
values, then spread to the patients through the rows the scope may see."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from oncograph.access import Scope
from oncograph.cohorts.filters import COMPARE_OPS, BoolNode, Leaf, Node
from oncograph.cohorts.index.columns import Column, Patients

Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ScopeMasks:
    """What one scope sees of the index's patients."""

    visible: Mask
    """Live patients whose project is not hidden (a controlled project without a grant)."""
    granted: Mask | None
    """Patients whose project the scope holds a grant for (None: the unrestricted scope, which sees every
    restricted row)."""


def scope_masks(patients: Patients, scope: Scope) -> ScopeMasks:
    n = len(patients.ids)
    if scope.unrestricted:
        return ScopeMasks(np.ones(n, np.bool_), None)
    granted_project = np.array([p in scope.granted_projects for p in patients.project_ids], np.bool_)
    hidden_project = patients.controlled & ~granted_project
    has_project = patients.project >= 0
    at = np.where(has_project, patients.project, 0)
    hidden = has_project & hidden_project[at] if len(hidden_project) else np.zeros(n, np.bool_)
    granted = has_project & granted_project[at] if len(granted_project) else np.zeros(n, np.bool_)
    return ScopeMasks(~hidden, granted)


def row_visible(column: Column, masks: ScopeMasks) -> Mask | None:
    """The column's rows the scope sees (None: all of them)."""
    if column.restricted is None or masks.granted is None:
        return None
    return ~column.restricted | masks.granted[column.pid]


def supported(node: Node | None) -> bool:
    """Whether the index evaluates ``node`` as SQL does: all but comparisons of strings, which SQL orders by
    the database collation."""
    if node is None:
        return True
    if isinstance(node, BoolNode):
        return all(supported(c) for c in node.children)
    return not (node.op in COMPARE_OPS and node.field.type == "string")


def evaluate(node: Node | None, columns: dict[str, Column], masks: ScopeMasks, n: int) -> Mask:
    """The patients (of the index, before visibility) matching ``node``."""
    if node is None:
        return np.ones(n, np.bool_)
    if isinstance(node, BoolNode):
        parts = [evaluate(c, columns, masks, n) for c in node.children]
        if node.op == "and":
            return np.logical_and.reduce(parts) if parts else np.ones(n, np.bool_)
        return np.logical_or.reduce(parts) if parts else np.zeros(n, np.bool_)
    return _leaf(node, columns[node.field.name], masks, n)


def _leaf(leaf: Leaf, column: Column, masks: ScopeMasks, n: int) -> Mask:
    seen = row_visible(column, masks)

    def exists(rows: Mask | None) -> Mask:
        """Patients with at least one visible row among ``rows`` (None: every row)."""
        if rows is None:
            rows = seen
        elif seen is not None:
            rows = rows & seen
        out = np.zeros(n, np.bool_)
        out[column.pid if rows is None else column.pid[rows]] = True
        return out

    op = leaf.op
    if op == "is":
        return ~exists(None)
    if op == "not":
        return exists(None)
    matching = _matching_values(leaf, column)
    match = matching[column.code]
    if op in COMPARE_OPS or op in ("=", "in"):
        return exists(match)
    if op == "excludeifany":
        return ~exists(match)
    # "!=" / "exclude": removed only when it has values and all of them match
    return ~exists(match) | exists(~match)


def _matching_values(leaf: Leaf, column: Column) -> Mask:
    """Which of the field's distinct values satisfy the leaf's operator."""
    values = column.values
    if leaf.op in COMPARE_OPS:
        numbers = column.numbers if column.numbers is not None else np.array(values)
        bound = leaf.values[0]
        compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[leaf.op]
        return np.asarray(compare(numbers, bound), np.bool_)
    if leaf.field.type in ("integer", "number"):
        numbers = column.numbers if column.numbers is not None else np.array(values, np.float64)
        return np.isin(numbers, np.array(list(leaf.values)))
    if leaf.field.type == "boolean":
        wanted = set(leaf.values)
        return np.array([v in wanted for v in values], np.bool_)
    plain = {v for v in leaf.values if not (isinstance(v, str) and "*" in v)}
    patterns = [_like(v) for v in dict.fromkeys(leaf.values) if isinstance(v, str) and "*" in v]
    return (
        np.array([v in plain or any(p.fullmatch(v) for p in patterns) for v in values], np.bool_)
        if values
        else np.zeros(0, np.bool_)
    )


def _like(pattern: str) -> re.Pattern[str]:
    """The ``*`` wildcard pattern as SQL ``LIKE`` reads it after the compiler's escaping: ``*`` any run of
    characters (none included), everything else itself."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def members(cohort: Mask, patients: Patients) -> list[int]:
    ids: list[int] = patients.ids[cohort].tolist()
    return ids
