"""Cohort queries: which visible patients match a filter, counts, facets and the modality matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Numeric, Select, cast, distinct, func, literal, literal_column, select

from oncograph.access import Scope
from oncograph.cohorts.fields import FIELDS, PATIENT, Field, get_field, suggest, visible_patient
from oncograph.cohorts.filters import FilterError, Node, Problem, compile_filter, parse

#: Terms returned per facet unless asked otherwise.
DEFAULT_FACET_SIZE = 50
DEFAULT_BINS = 10


def cohort_select(node: Node | None, scope: Scope) -> Select[Any]:
    """``SELECT patient.id`` of the visible patients matching ``node``."""
    return select(PATIENT.c.id).where(visible_patient(scope), compile_filter(node, scope))


def count(conn: Connection, filters: Any, scope: Scope) -> int:
    node = parse(filters)
    return int(
        conn.execute(select(func.count()).select_from(cohort_select(node, scope).subquery())).scalar_one()
    )


def member_ids(conn: Connection, filters: Any, scope: Scope) -> list[int]:
    """Patient row ids (sorted) of the visible patients matching ``filters``."""
    node = parse(filters)
    return [r[0] for r in conn.execute(cohort_select(node, scope).order_by(PATIENT.c.id))]


# -- facets -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TermsFacet:
    field: str
    buckets: list[tuple[Any, int]]
    """(value, patients with that value), most patients first, then by value."""
    missing: int
    """Patients of the cohort with no value."""
    other: int = 0
    """Distinct values beyond ``size`` that were not returned."""

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "type": "terms",
            "buckets": [{"key": k, "count": c} for k, c in self.buckets],
            "missing": self.missing,
            "other_values": self.other,
        }


@dataclass(slots=True)
class HistogramFacet:
    field: str
    interval: float | None
    buckets: list[tuple[float, float, int]]
    """(lower bound inclusive, upper bound exclusive, patients with a value in the bin)."""
    missing: int
    stats: dict[str, float | None] = dc_field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "type": "histogram",
            "interval": self.interval,
            "buckets": [{"from": lo, "to": hi, "count": c} for lo, hi, c in self.buckets],
            "missing": self.missing,
            "stats": self.stats,
        }


Facet = TermsFacet | HistogramFacet


def resolve_fields(names: Sequence[str]) -> list[Field]:
    problems: list[Problem] = []
    out: list[Field] = []
    for i, name in enumerate(names):
        f = get_field(name) if isinstance(name, str) else None
        if f is None:
            close = suggest(str(name))
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problems.append(Problem(f"facets[{i}]", f"unknown field {str(name)[:200]!r}{hint}"))
        else:
            out.append(f)
    if problems:
        raise FilterError(problems)
    return out


def facets(
    conn: Connection,
    filters: Any,
    names: Sequence[str],
    scope: Scope,
    *,
    size: int = DEFAULT_FACET_SIZE,
    bins: int = DEFAULT_BINS,
    intervals: dict[str, float] | None = None,
) -> tuple[int, list[Facet]]:
    """The cohort's size and one facet per field: value counts for categorical fields, a histogram of
    ``bins`` "nice" bins (or a given interval) for numeric ones. Counts are patients, not records: a patient
    with two diagnoses in the same bin counts once there."""
    node = parse(filters)
    fields = resolve_fields(names)
    cohort = cohort_select(node, scope).cte("cohort")
    total = int(conn.execute(select(func.count()).select_from(cohort)).scalar_one())
    out: list[Facet] = []
    for f in fields:
        src = f.source(scope)
        rows = src.select(src.pid.in_(select(cohort.c.id))).subquery("vals")
        with_value = int(
            conn.execute(
                select(func.count(distinct(rows.c.pid))).where(rows.c.value.is_not(None))
            ).scalar_one()
        )
        missing = total - with_value
        if f.facet == "terms":
            n = func.count(distinct(rows.c.pid)).label("n")
            q = (
                select(rows.c.value, n)
                .where(rows.c.value.is_not(None))
                .group_by(rows.c.value)
                .order_by(n.desc(), rows.c.value)
            )
            all_rows = conn.execute(q.limit(size + 1)).all()
            distinct_values = len(all_rows)
            if distinct_values > size:
                distinct_values = int(
                    conn.execute(
                        select(func.count(distinct(rows.c.value))).where(rows.c.value.is_not(None))
                    ).scalar_one()
                )
            buckets = [(_json_value(v), int(c)) for v, c in all_rows[:size]]
            out.append(TermsFacet(f.name, buckets, missing, max(0, distinct_values - size)))
        else:
            out.append(_histogram(conn, f, rows, missing, bins, (intervals or {}).get(f.name)))
    return total, out


def _histogram(
    conn: Connection, f: Field, rows: Any, missing: int, bins: int, interval: float | None
) -> HistogramFacet:
    stats_row = conn.execute(
        select(
            func.min(rows.c.value), func.max(rows.c.value), func.avg(rows.c.value), func.count(rows.c.value)
        ).where(rows.c.value.is_not(None))
    ).one()
    lo, hi, mean, n = stats_row
    stats: dict[str, float | None] = {
        "min": _num(lo),
        "max": _num(hi),
        "mean": _num(mean),
        "values": float(n),
    }
    if lo is None:
        return HistogramFacet(f.name, interval, [], missing, stats)
    width = interval if interval and interval > 0 else _nice_interval(float(lo), float(hi), bins)
    # exact decimal arithmetic: floor(4.6 / 0.1) must be 46, not 45 (binary floating point)
    step = Decimal(repr(width))
    exact = literal(step, Numeric())
    bucket = (func.floor(cast(rows.c.value, Numeric) / exact) * exact).label("lo")
    q = (
        select(bucket, func.count(distinct(rows.c.pid)))
        .where(rows.c.value.is_not(None))
        .group_by(literal_column("1"))
        .order_by(literal_column("1"))
    )
    buckets = [(float(b), float(Decimal(b) + step), int(c)) for b, c in conn.execute(q)]
    return HistogramFacet(f.name, width, buckets, missing, stats)


def _nice_interval(lo: float, hi: float, bins: int) -> float:
    """A 1/2/5 x 10^k bin width giving about ``bins`` bins over [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return 1.0
    raw = span / max(1, bins)
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if raw <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _json_value(v: Any) -> Any:
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, float):
        return v
    return str(v)


# -- modality matrix --------------------------------------------------------------------------------------


@dataclass(slots=True)
class ModalityMatrix:
    total: int
    modalities: dict[str, int]
    """Patients having each modality."""
    combinations: list[tuple[tuple[str, ...], int]]
    """Patients per exact combination of modalities (the empty tuple: none), most first."""

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "modalities": self.modalities,
            "combinations": [{"modalities": list(k), "count": c} for k, c in self.combinations],
        }


def modality_matrix(conn: Connection, filters: Any, scope: Scope) -> ModalityMatrix:
    node = parse(filters)
    cohort = cohort_select(node, scope).cte("cohort")
    total = int(conn.execute(select(func.count()).select_from(cohort)).scalar_one())
    src = FIELDS["modalities"].source(scope)
    rows = src.select(src.pid.in_(select(cohort.c.id))).subquery("mods")
    per_patient = (
        select(rows.c.pid, func.array_agg(distinct(rows.c.value)).label("mods"))
        .group_by(rows.c.pid)
        .subquery()
    )
    combos = conn.execute(
        select(per_patient.c.mods, func.count()).group_by(per_patient.c.mods).order_by(func.count().desc())
    ).all()
    combinations = [(tuple(sorted(m)), int(c)) for m, c in combos]
    with_any = sum(c for _, c in combinations)
    if total - with_any:
        combinations.append(((), total - with_any))
    combinations.sort(key=lambda kc: (-kc[1], kc[0]))
    singles = dict.fromkeys(FIELDS["modalities"].values, 0)
    for mods, c in combinations:
        for m in mods:
            singles[m] = singles.get(m, 0) + c
    return ModalityMatrix(total, singles, combinations)
