"""Small-count suppression for principals with aggregate-only access (``ONCOGRAPH_MIN_CELL_COUNT``).

The model (one rule for every endpoint):

- **Aggregate-only access** (role ``aggregate``): the principal sees counts, never records. Every count it is
  given (facet buckets, ``missing``, ``other_values`` and totals, the modality matrix, project counts) goes
  through :meth:`Suppression.count`: with ``min_count`` N > 0, a count from 1 to N - 1 reads ``"<N>"`` (0
  stays 0: an empty cell names nobody). A cohort of 1 to N - 1 patients is not described at all (no buckets,
  no modality breakdown); histogram ``min``/``max`` are never shown (each is one person's value), ``mean``
  only over N or more patients. Filters and facets on identifier fields (case ids, barcodes, record ids, file
  names) are refused: they single people out. Every endpoint that answers with records or with an exact count of a chosen set of patients
  (patient listings and pages, cohorts and their sizes and members, survival, similar patients, lineage, runs,
  exports) refuses it (HTTP 403), so no endpoint hands it a suppressed count directly.
- **Record-level access** (viewer and above): the principal may list the patients themselves, so suppressing
  its counts would be cosmetic; it gets exact counts everywhere. What protects records is the access policy
  (grants for controlled projects), not suppression.

What suppression cannot hide (documented, not prevented): *differencing*. Two answers that are each at least
N can differ by less than N — the total of a filter ``A`` minus the total of ``A and not x`` is the number of
patients in ``A`` with ``x`` — and a bucket's count can be recovered as the total minus the other buckets
when every other count is shown. Closing that needs noise (differential privacy) or query auditing, which
oncograph does not do; grant record-level access only to principals who may see records anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Suppression:
    """``min_count`` 0 (or a record-level principal, see :func:`suppression_for`) suppresses nothing."""

    min_count: int = 0

    def count(self, n: int) -> int | str:
        return f"<{self.min_count}" if 0 < n < self.min_count else n

    def withholds(self, total: int) -> bool:
        """Whether a cohort of ``total`` patients is too small to be described at all (1 to N - 1)."""
        return 0 < total < self.min_count

    def facet(self, facet: dict[str, Any], *, total: int) -> dict[str, Any]:
        """A facet's ``to_json()`` with its patient counts suppressed (``total``: patients of the cohort).

        Every count is suppressed, ``other_values`` included; histogram ``min`` and ``max`` (one person's
        value each) are never shown, ``mean`` only over N or more patients; and a cohort of 1 to N - 1
        patients gets no buckets at all (each bucket, even as ``"<N"``, would describe those few people)."""
        if self.min_count <= 0:
            return facet
        out = {**facet, "missing": self.count(int(facet["missing"]))}
        if "other_values" in facet:
            out["other_values"] = self.count(int(facet["other_values"]))
        out["buckets"] = [{**b, "count": self.count(int(b["count"]))} for b in facet["buckets"]]
        if facet.get("type") == "histogram":
            patients = total - int(facet["missing"])
            stats = dict(facet.get("stats") or {})
            stats.update(min=None, max=None)
            if patients < self.min_count:
                stats["mean"] = None
            if stats.get("values") is not None:
                stats["values"] = self.count(int(stats["values"] or 0))
            out["stats"] = stats
        if self.withholds(total):
            out.update(buckets=[], missing=f"<{self.min_count}")
            if "other_values" in out:
                out["other_values"] = 0
        return out

    def matrix(self, matrix: dict[str, Any]) -> dict[str, Any]:
        """A modality matrix's ``to_json()`` with its patient counts suppressed (nothing but the suppressed
        total for a cohort of 1 to N - 1 patients)."""
        if self.min_count <= 0:
            return matrix
        if self.withholds(int(matrix["total"])):
            return {"total": self.count(int(matrix["total"])), "modalities": {}, "combinations": []}
        return {
            "total": self.count(int(matrix["total"])),
            "modalities": {k: self.count(int(v)) for k, v in matrix["modalities"].items()},
            "combinations": [{**c, "count": self.count(int(c["count"]))} for c in matrix["combinations"]],
        }


def suppression_for(role: str, min_count: int) -> Suppression:
    """The suppression a principal of ``role`` gets: ``min_count`` for aggregate-only access, none otherwise."""
    return Suppression(min_count if role == AGGREGATE_ROLE else 0)


AGGREGATE_ROLE = "aggregate"
"""The role with aggregate-only access (counts, never records)."""
