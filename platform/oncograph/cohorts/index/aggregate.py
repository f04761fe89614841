"""Facets and the modality matrix of a cohort (a patient mask) from the index's columns, equal to the SQL
engine's answers (:mod:`oncograph.cohorts.query`): the same counts, order, missing and other-values figures,
and histogram bins cut with the same exact decimal arithmetic (``floor(value::numeric / step) * step``). One
difference, on purpose: a histogram's mean is the exactly rounded mean of its values; SQL's ``avg`` may differ
from it in the last digit."""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from oncograph.cohorts.index.columns import Column
from oncograph.cohorts.index.evaluate import Mask, ScopeMasks, row_visible
from oncograph.cohorts.results import HistogramFacet, ModalityMatrix, TermsFacet, bin_width, json_value

#: A quotient this close to a whole number is recomputed in decimal (float division is off by a few ulps, and
#: PostgreSQL casts a double to numeric through 15 significant digits first).
_NEAR = 1e-9


def _rows(column: Column, cohort: Mask, masks: ScopeMasks) -> Mask:
    rows = cohort[column.pid]
    seen = row_visible(column, masks)
    return rows if seen is None else rows & seen


def _patients_with_any(column: Column, rows: Mask) -> int:
    if not column.field.nested:
        return int(np.count_nonzero(rows))
    return _distinct(column.pid[rows])


def _distinct(pid: NDArray[np.int32]) -> int:
    """Distinct patients among rows ordered by patient."""
    return int(np.count_nonzero(pid[1:] != pid[:-1])) + 1 if len(pid) else 0


def terms(column: Column, cohort: Mask, masks: ScopeMasks, total: int, size: int) -> TermsFacet:
    d = len(column.values)
    if column.field.nested and column.distinct is not None:
        pid, code, restricted = column.distinct
        rows = cohort[pid]
        if restricted is not None and masks.granted is not None:
            rows &= ~restricted | masks.granted[pid]
        counts = np.bincount(code[rows], minlength=d)
        with_value = _distinct(pid[rows])
    else:
        rows = _rows(column, cohort, masks)
        counts = np.bincount(column.code[rows], minlength=d)
        with_value = _patients_with_any(column, rows)
    present = np.flatnonzero(counts)
    ordered = present[np.lexsort((present, -counts[present]))]
    buckets = [(json_value(column.values[c]), int(counts[c])) for c in ordered[:size]]
    return TermsFacet(column.field.name, buckets, total - with_value, max(0, len(present) - size))


def histogram(
    column: Column, cohort: Mask, masks: ScopeMasks, total: int, bins: int, interval: float | None
) -> HistogramFacet:
    assert column.numbers is not None
    rows = _rows(column, cohort, masks)
    codes = column.code[rows]
    per_value = np.bincount(codes, minlength=len(column.values))
    present = np.flatnonzero(per_value)
    n = len(codes)
    name = column.field.name
    if not n:
        stats: dict[str, float | None] = {"min": None, "max": None, "mean": None, "values": 0.0}
        return HistogramFacet(name, interval, [], total, stats)
    numbers = column.numbers[present]
    lo, hi = numbers[0], numbers[-1]
    stats = {
        "min": float(lo),
        "max": float(hi),
        "mean": _mean(numbers, per_value[present]),
        "values": float(n),
    }
    missing = total - _patients_with_any(column, rows)
    width = bin_width(float(lo), float(hi), bins, interval)
    step = Decimal(repr(width))
    bin_of_value = np.zeros(len(column.values), np.int64)
    bin_of_value[present] = _bins(numbers, width, step, column.field.type == "integer")
    row_bins = bin_of_value[codes]
    first = int(row_bins.min())
    if column.field.nested:
        ordered = bool(np.all(np.diff(bin_of_value[present]) >= 0))
        per_bin = _patients_per_bin(column.pid[rows], row_bins - first, ordered)
    else:
        per_bin = np.bincount((row_bins - first).astype(np.intp))
    buckets = []
    for offset in np.flatnonzero(per_bin):
        start = Decimal(int(offset) + first) * step
        buckets.append((float(start), float(start + step), int(per_bin[offset])))
    return HistogramFacet(name, width, buckets, missing, stats)


def _patients_per_bin(pid: NDArray[np.int32], bins: NDArray[np.int64], ordered: bool) -> NDArray[np.int64]:
    """Distinct patients per bin (a patient with two values in one bin counts once there). Rows come ordered by
    patient, then value; when bins grow with the value (``ordered``) a patient's repeats of a bin are adjacent."""
    span = int(bins.max()) + 1
    if not ordered:
        pairs = np.unique(pid.astype(np.int64) * span + bins)
        return np.bincount((pairs % span).astype(np.intp), minlength=span)
    first = np.ones(len(pid), np.bool_)
    first[1:] = (pid[1:] != pid[:-1]) | (bins[1:] != bins[:-1])
    return np.bincount(bins[first].astype(np.intp), minlength=span)


def _mean(numbers: NDArray[np.generic], counts: NDArray[np.int64]) -> float:
    if numbers.dtype.kind in "iu":
        n = int(counts.sum())
        if len(numbers) and max(abs(int(numbers[0])), abs(int(numbers[-1]))) * n < 2**63:
            total = int(np.dot(numbers.astype(np.int64), counts.astype(np.int64)))  # exact: cannot overflow
        else:
            total = sum(int(v) * int(c) for v, c in zip(numbers.tolist(), counts.tolist(), strict=True))
        return float(Fraction(total, n))
    return math.fsum(np.repeat(numbers, counts).tolist()) / int(counts.sum())


def _bins(numbers: NDArray[np.generic], width: float, step: Decimal, integral: bool) -> NDArray[np.int64]:
    """``floor(value / step)`` of each value, as PostgreSQL's numeric arithmetic has it."""
    if integral and float(step) == int(step) and step >= 1:
        return np.floor_divide(numbers.astype(np.int64), int(step))
    q = numbers.astype(np.float64) / width
    k = np.floor(q).astype(np.int64)
    near = np.abs(q - np.rint(q)) <= _NEAR * np.maximum(1.0, np.abs(q))
    with localcontext() as ctx:
        ctx.prec = 60
        for i in np.flatnonzero(near):
            v = numbers[i]
            text = str(int(v)) if integral else format(float(v), ".15g")
            k[i] = int((Decimal(text) / step).to_integral_value(rounding="ROUND_FLOOR"))
    return k


def modality_matrix(
    column: Column, cohort: Mask, masks: ScopeMasks, known: tuple[str, ...]
) -> ModalityMatrix:
    total = int(np.count_nonzero(cohort))
    rows = _rows(column, cohort, masks)
    bits = np.zeros(len(cohort), np.int64)
    for code in range(len(column.values)):
        bits[column.pid[rows & (column.code == code)]] |= 1 << code
    chosen = bits[cohort]
    combos, counts = np.unique(chosen[chosen != 0], return_counts=True)
    combinations: list[tuple[tuple[str, ...], int]] = [
        (tuple(sorted(str(v) for c, v in enumerate(column.values) if int(b) >> c & 1)), int(k))
        for b, k in zip(combos.tolist(), counts.tolist(), strict=True)
    ]
    with_any = sum(c for _, c in combinations)
    if total - with_any:
        combinations.append(((), total - with_any))
    combinations.sort(key=lambda kc: (-kc[1], kc[0]))
    singles = dict.fromkeys(known, 0)
    for mods, c in combinations:
        for m in mods:
            singles[m] = singles.get(m, 0) + c
    return ModalityMatrix(total, singles, combinations)
