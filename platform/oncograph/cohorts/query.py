"""Cohort queries: which visible patients match a filter, counts, facets and the modality matrix.

Two engines give the same answers: SQL (this module: the filter compiled to one predicate, facets by
``GROUPING SETS``), and the in-memory cohort index (:mod:`oncograph.cohorts.index`), which answers whatever it
can exactly as SQL would, in milliseconds; each function below asks the index first.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Numeric,
    Select,
    TableClause,
    cast,
    column,
    distinct,
    func,
    insert,
    literal,
    literal_column,
    select,
    table,
    text,
    tuple_,
)

from oncograph.access import Scope
from oncograph.access.policy import visible_patient
from oncograph.cohorts import index
from oncograph.cohorts.fields import FIELDS, PATIENT, Field, get_field, suggest
from oncograph.cohorts.filters import FilterError, Node, Problem, compile_filter, fields_of, parse
from oncograph.cohorts.results import (
    Facet,
    HistogramFacet,
    ModalityMatrix,
    TermsFacet,
    bin_width,
    json_value,
    num,
)
from oncograph.errors import PermissionDeniedError

#: Terms returned per facet unless asked otherwise.
DEFAULT_FACET_SIZE = 50
DEFAULT_BINS = 10
DEFAULT_FACETS: tuple[str, ...] = (
    "project.project_id",
    "primary_site",
    "demographic.vital_status",
    "demographic.sex_at_birth",
    "diagnoses.stage",
    "diagnoses.age_at_diagnosis",
    "modalities",
)
"""The facets shown when none are asked for (``oncograph facets``; the cohort benchmark measures them)."""


def cohort_select(node: Node | None, scope: Scope) -> Select[Any]:
    """``SELECT patient.id`` of the visible patients matching ``node``."""
    return select(PATIENT.c.id).where(visible_patient(scope), compile_filter(node, scope))


def count(conn: Connection, filters: Any, scope: Scope) -> int:
    node = parse(filters)
    fast = index.view(conn, node, [], scope)
    if fast is not None:
        return fast.cached(
            {"count": filters, "scope": index.scope_key(scope)},
            lambda: int(fast.cohort(node).sum()),
        )
    return int(
        conn.execute(select(func.count()).select_from(cohort_select(node, scope).subquery())).scalar_one()
    )


def member_ids(conn: Connection, filters: Any, scope: Scope) -> list[int]:
    """Patient row ids (sorted) of the visible patients matching ``filters``."""
    node = parse(filters)
    fast = index.view(conn, node, [], scope)
    if fast is not None:
        return fast.members(fast.cohort(node))
    return [r[0] for r in conn.execute(cohort_select(node, scope).order_by(PATIENT.c.id))]


# -- facets -------------------------------------------------------------------------------------------------


def refuse_identifiers(filters: Any, facet_names: Sequence[str]) -> None:
    """Refuse a request of an aggregate-only principal that filters or facets on identifier fields (case ids,
    barcodes, record ids, file names): a facet of barcodes lists people, and a filter on one singles a person
    out whose values every other facet would then describe.

    Raises:
        FilterError: the filter or a facet name is invalid.
        PermissionDeniedError: identifier fields are used.
    """
    used = [f.name for f in fields_of(parse(filters)) if f.identifier]
    used += [f.name for f in resolve_fields(facet_names) if f.identifier and f.name not in used]
    if used:
        raise PermissionDeniedError(
            f"aggregate-only access may not filter or facet on identifier fields ({', '.join(used)})",
            hint="describe groups by their attributes (project, site, stage, ...); GET /fields marks the "
            "identifier fields",
        )


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
    with two diagnoses in the same bin counts once there.

    The cohort is computed once into a temporary table (the filter may be expensive); each terms facet is one
    statement (``GROUPING SETS`` gives the per-value and the with-any-value counts in one pass), a histogram
    two (its statistics, then its bins). Fields with one value per patient count rows, not distinct ids.
    """
    node = parse(filters)
    fields = resolve_fields(names)
    fast = index.view(conn, node, fields, scope)
    if fast is not None:
        request = {
            "facets": filters,
            "names": [f.name for f in fields],
            "size": size,
            "bins": bins,
            "intervals": intervals or {},
            "scope": index.scope_key(scope),
        }

        def compute() -> tuple[int, list[Facet]]:
            cohort = fast.cohort(node)
            total = int(cohort.sum())
            chosen = intervals or {}
            return total, [fast.facet(f, cohort, total, size, bins, chosen.get(f.name)) for f in fields]

        return fast.cached(request, compute)
    with cohort_table(conn, node, scope) as cohort:
        total = int(conn.execute(select(func.count()).select_from(cohort)).scalar_one())
        out: list[Facet] = []
        for f in fields:
            src = f.source(scope)
            rows = src.select(src.pid.in_(select(cohort.c.id)), src.value.is_not(None)).subquery("vals")
            patients = func.count() if not f.nested else func.count(distinct(rows.c.pid))
            if f.facet == "terms":
                out.append(_terms(conn, f, rows, patients, total, size))
            else:
                out.append(_histogram(conn, f, rows, patients, total, bins, (intervals or {}).get(f.name)))
    return total, out


_temp_names = itertools.count()


@contextmanager
def cohort_table(conn: Connection, node: Node | None, scope: Scope) -> Iterator[TableClause]:
    """The cohort's patient ids in a temporary table (dropped afterwards), analysed for the planner."""
    name = f"og_cohort_{os.getpid()}_{next(_temp_names)}"
    conn.execute(text("SET LOCAL work_mem = '32MB'"))
    conn.execute(text(f"CREATE TEMP TABLE {name} (id bigint PRIMARY KEY) ON COMMIT DROP"))
    cohort = table(name, column("id", BigInteger))
    try:
        conn.execute(insert(cohort).from_select(["id"], cohort_select(node, scope)))
        conn.execute(text(f"ANALYZE {name}"))
        yield cohort
    finally:
        conn.execute(text(f"DROP TABLE IF EXISTS {name}"))


def _terms(conn: Connection, f: Field, rows: Any, patients: Any, total: int, size: int) -> TermsFacet:
    n = patients.label("n")
    grouped = (
        select(rows.c.value, n, func.grouping(rows.c.value).label("g"))
        .group_by(func.grouping_sets(tuple_(rows.c.value), tuple_()))
        .subquery("grouped")
    )
    q = (
        select(grouped.c.value, grouped.c.n, grouped.c.g, func.count().over().label("groups"))
        .order_by(grouped.c.g.desc(), grouped.c.n.desc(), grouped.c.value)
        .limit(size + 1)
    )
    result = conn.execute(q).all()
    with_value = int(result[0].n) if result and result[0].g == 1 else 0
    values = [r for r in result if r.g == 0]
    distinct_values = int(result[0].groups) - 1 if result else 0
    buckets = [(json_value(r.value), int(r.n)) for r in values[:size]]
    return TermsFacet(f.name, buckets, total - with_value, max(0, distinct_values - size))


def _histogram(
    conn: Connection,
    f: Field,
    rows: Any,
    patients: Any,
    total: int,
    bins: int,
    interval: float | None,
) -> HistogramFacet:
    stats_row = conn.execute(
        select(
            func.min(rows.c.value),
            func.max(rows.c.value),
            func.avg(rows.c.value),
            func.count(rows.c.value),
            patients,
        )
    ).one()
    lo, hi, mean, n, with_value = stats_row
    missing = total - int(with_value)
    stats: dict[str, float | None] = {
        "min": num(lo),
        "max": num(hi),
        "mean": num(mean),
        "values": float(n),
    }
    if lo is None:
        return HistogramFacet(f.name, interval, [], missing, stats)
    width = bin_width(float(lo), float(hi), bins, interval)
    # exact decimal arithmetic: floor(4.6 / 0.1) must be 46, not 45 (binary floating point)
    step = Decimal(repr(width))
    exact = literal(step, Numeric())
    bucket = (func.floor(cast(rows.c.value, Numeric) / exact) * exact).label("lo")
    q = select(bucket, patients).group_by(literal_column("1")).order_by(literal_column("1"))
    buckets = [(float(b), float(Decimal(b) + step), int(c)) for b, c in conn.execute(q)]
    return HistogramFacet(f.name, width, buckets, missing, stats)


# -- modality matrix --------------------------------------------------------------------------------------


def modality_matrix(conn: Connection, filters: Any, scope: Scope) -> ModalityMatrix:
    node = parse(filters)
    known = FIELDS["modalities"].values
    fast = index.view(conn, node, [FIELDS["modalities"]], scope)
    if fast is not None:
        return fast.cached(
            {"modality_matrix": filters, "scope": index.scope_key(scope)},
            lambda: fast.modality_matrix(fast.cohort(node), known),
        )
    with cohort_table(conn, node, scope) as cohort:
        total = int(conn.execute(select(func.count()).select_from(cohort)).scalar_one())
        src = FIELDS["modalities"].source(scope)
        rows = src.select(src.pid.in_(select(cohort.c.id))).subquery("mods")
        per_patient = (
            select(rows.c.pid, func.array_agg(distinct(rows.c.value)).label("mods"))
            .group_by(rows.c.pid)
            .subquery()
        )
        combos = conn.execute(
            select(per_patient.c.mods, func.count())
            .group_by(per_patient.c.mods)
            .order_by(func.count().desc())
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


__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_FACETS",
    "DEFAULT_FACET_SIZE",
    "Facet",
    "HistogramFacet",
    "ModalityMatrix",
    "TermsFacet",
    "cohort_select",
    "count",
    "facets",
    "member_ids",
    "modality_matrix",
    "refuse_identifiers",
    "resolve_fields",
]
