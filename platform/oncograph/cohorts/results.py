"""What the cohort engine answers with: facets (terms, histograms) and the modality matrix, and the rules both
engines (SQL, :mod:`oncograph.cohorts.index`) share for them (bin widths, JSON values)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

#: The most bins a histogram's range is cut into; a finer ``interval`` is widened to keep within it (only bins
#: holding values are returned, so this bounds float precision, not the answer's size: 5e-324 made bins whose
#: two ends were the same float).
MAX_HISTOGRAM_BINS = 1_000_000


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


def nice_interval(lo: float, hi: float, bins: int) -> float:
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


def num(v: Any) -> float | None:
    return None if v is None else float(v)


def json_value(v: Any) -> Any:
    if isinstance(v, bool | int | str) or v is None:
        return v
    if isinstance(v, float):
        return v
    return str(v)


def bin_width(lo: float, hi: float, bins: int, interval: float | None) -> float:
    """The histogram bin width over [lo, hi]: the given ``interval``, else a nice width for about ``bins`` bins,
    widened to keep within :data:`MAX_HISTOGRAM_BINS`."""
    width = interval if interval and interval > 0 else nice_interval(lo, hi, bins)
    if (hi - lo) / width > MAX_HISTOGRAM_BINS:
        # the facet's ``interval`` says the width used
        width = nice_interval(lo, hi, MAX_HISTOGRAM_BINS)
    return width
