"""Small-count suppression of aggregate patient counts (``ONCOGRAPH_MIN_CELL_COUNT``).

With ``min_count`` N > 0, a patient count from 1 to N - 1 in an aggregate answer (facet buckets, ``missing``
and totals, the modality matrix, project counts) is returned as the string ``"<N>"``; 0 stays 0 (an empty
cell names nobody). Histogram ``min``/``max``/``mean`` are left out when fewer than N patients have a value, as
they would then describe single people.

Row-level answers are not aggregates and are not suppressed: patient listings and details, cohort sizes and
member lists, survival curves and similar patients. What protects those is access control (a patient is
visible only under a grant for its controlled project), not suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Suppression:
    min_count: int = 0

    def count(self, n: int) -> int | str:
        return f"<{self.min_count}" if 0 < n < self.min_count else n

    def facet(self, facet: dict[str, Any], *, total: int) -> dict[str, Any]:
        """A facet's ``to_json()`` with its patient counts suppressed (``total``: patients of the cohort)."""
        if self.min_count <= 0:
            return facet
        out = {**facet, "missing": self.count(int(facet["missing"]))}
        out["buckets"] = [{**b, "count": self.count(int(b["count"]))} for b in facet["buckets"]]
        if facet.get("type") == "histogram":
            patients = total - int(facet["missing"])
            stats = dict(facet.get("stats") or {})
            if 0 < patients < self.min_count:
                stats.update(min=None, max=None, mean=None)
            if stats.get("values") is not None:
                stats["values"] = self.count(int(stats["values"] or 0))
            out["stats"] = stats
        return out

    def matrix(self, matrix: dict[str, Any]) -> dict[str, Any]:
        """A modality matrix's ``to_json()`` with its patient counts suppressed."""
        if self.min_count <= 0:
            return matrix
        return {
            "total": self.count(int(matrix["total"])),
            "modalities": {k: self.count(int(v)) for k, v in matrix["modalities"].items()},
            "combinations": [{**c, "count": self.count(int(c["count"]))} for c in matrix["combinations"]],
        }
