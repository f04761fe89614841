"""The cohort builder's selection and the GDC filter it stands for, both ways, and in the page URL.

A :class:`Selection` is what the facet widgets hold: values picked per categorical field and a ``[low, high]``
range per numeric field (in the field's own unit; the builder shows days as years). :func:`to_filter` makes
the GDC filter the API takes; :func:`from_filter` reads one back when it has the builder's shape (an ``and``
of ``in``, ``>=`` and ``<=`` leaves), so a filter pasted from the GDC portal or reopened from a link fills the
widgets, and anything else stays an "advanced" filter shown as JSON. The URL holds the filter itself,
compact JSON in the ``filter`` query parameter, so a link reopens exactly the same selection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_FILTER_CHARS = 20_000
"""Longer ``filter`` URL parameters are refused (browsers and proxies cut long URLs anyway)."""


class FilterTextError(ValueError):
    """A filter typed, pasted or linked that is not usable JSON; the message says what to fix."""


@dataclass
class Selection:
    terms: dict[str, list[Any]] = field(default_factory=dict)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not any(self.terms.values()) and not any(
            lo is not None or hi is not None for lo, hi in self.ranges.values()
        )

    def without(self, name: str) -> Selection:
        """The selection without ``name``'s own clause (a facet's counts ignore its own choice)."""
        return Selection(
            {k: v for k, v in self.terms.items() if k != name},
            {k: v for k, v in self.ranges.items() if k != name},
        )


def _leaf(op: str, name: str, value: Any) -> dict[str, Any]:
    return {"op": op, "content": {"field": name, "value": value}}


def to_filter(selection: Selection) -> dict[str, Any] | None:
    """The GDC filter of a selection (None: everyone). Fields in a stable (sorted) order."""
    leaves: list[dict[str, Any]] = []
    for name in sorted(selection.terms):
        values = selection.terms[name]
        if values:
            leaves.append(_leaf("in", name, list(values)))
    for name in sorted(selection.ranges):
        lo, hi = selection.ranges[name]
        if lo is not None:
            leaves.append(_leaf(">=", name, _number(lo)))
        if hi is not None:
            leaves.append(_leaf("<=", name, _number(hi)))
    if not leaves:
        return None
    return leaves[0] if len(leaves) == 1 else {"op": "and", "content": leaves}


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def from_filter(filters: Any) -> Selection | None:
    """The selection a GDC filter stands for, or None when the builder's widgets cannot show it."""
    if filters is None or filters == {}:
        return Selection()
    if not isinstance(filters, dict):
        return None
    leaves = filters.get("content") if filters.get("op") == "and" else [filters]
    if not isinstance(leaves, list):
        return None
    selection = Selection()
    for leaf in leaves:
        if not isinstance(leaf, dict) or not isinstance(leaf.get("content"), dict):
            return None
        op, content = leaf.get("op"), leaf["content"]
        name, value = content.get("field"), content.get("value")
        if not isinstance(name, str):
            return None
        if op in ("in", "="):
            if name in selection.terms or name in selection.ranges:
                return None
            selection.terms[name] = list(value) if isinstance(value, list) else [value]
        elif op in (">=", "<=") and isinstance(value, int | float) and not isinstance(value, bool):
            if name in selection.terms:
                return None
            lo, hi = selection.ranges.get(name, (None, None))
            if (op == ">=" and lo is not None) or (op == "<=" and hi is not None):
                return None
            selection.ranges[name] = (value, hi) if op == ">=" else (lo, value)
        else:
            return None
    return selection


def parse_filter_text(raw: str) -> dict[str, Any] | None:
    """A filter typed or pasted as JSON (empty: None). The API checks its fields and operators.

    Raises:
        FilterTextError: not JSON, or not a JSON object.
    """
    raw = raw.strip()
    if not raw:
        return None
    if len(raw) > MAX_FILTER_CHARS:
        raise FilterTextError(f"the filter is {len(raw)} characters; at most {MAX_FILTER_CHARS} are accepted")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FilterTextError(
            f"the filter is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise FilterTextError(
            'a filter is a JSON object such as {"op": "in", "content": {"field": ..., "value": [...]}}'
        )
    return value


def to_query(filters: dict[str, Any] | None) -> str | None:
    """The ``filter`` URL parameter of a filter (None: no parameter)."""
    return None if filters is None else json.dumps(filters, separators=(",", ":"), sort_keys=True)


def from_query(value: str | None) -> dict[str, Any] | None:
    """The filter a ``filter`` URL parameter carries. Raises FilterTextError for a broken link."""
    return parse_filter_text(value or "")


def parse_case_list(raw: str) -> list[str]:
    """Case UUIDs or barcodes from pasted text or an uploaded file: split on commas, tabs, spaces and line
    breaks, blanks and repeats dropped, order kept (the GDC portal's case-set import)."""
    seen: dict[str, None] = {}
    for token in raw.replace(",", " ").replace(";", " ").split():
        token = token.strip().strip('"').strip("'")
        if token:
            seen.setdefault(token, None)
    return list(seen)


__all__ = [
    "MAX_FILTER_CHARS",
    "FilterTextError",
    "Selection",
    "from_filter",
    "from_query",
    "parse_case_list",
    "parse_filter_text",
    "to_filter",
    "to_query",
]
