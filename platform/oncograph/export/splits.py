"""Patient-level train/val/test splits: stratified, seeded, and leak-free by construction.

1. **Groups**: patients that share a file (a multi-case GDC file, a PDC study's files) form one group
   (connected components); a group is never split, so no patient, sample, slide, series or file of one split
   appears in another. (Samples, slides and series belong to exactly one patient in the graph.)
2. **Strata**: a group's stratum is the values of the stratification fields (default project × vital
   status) of its first patient by case id.
3. **Order**: within a stratum, groups are ordered by SHA-256 of ``seed:group key`` — the same seed gives the
   same order on any machine, and adding a patient moves no one else.
4. **Allocation**: each stratum is cut by cumulative ratios (largest remainder), so every split gets its
   share of every stratum as closely as whole groups allow.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from oncograph.errors import ValidationError

SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.7, 0.15, 0.15)


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if (
        len(ratios) != 3
        or not all(isinstance(r, int | float) and math.isfinite(r) for r in ratios)
        or any(r < 0 for r in ratios)
        or abs(sum(ratios) - 1.0) > 1e-6
    ):
        raise ValidationError(
            f"split ratios {list(ratios)} must be three non-negative numbers adding up to 1",
            hint="e.g. --ratios 0.7,0.15,0.15 (train, val, test)",
        )
    return (float(ratios[0]), float(ratios[1]), float(ratios[2]))


def groups(n: int, shared: Iterable[Sequence[int]]) -> np.ndarray:
    """The group of each of ``n`` patients numbered ``0..n-1`` in case-id order: the smallest number in its
    connected component over the ``shared`` sets (patients holding one file), so a group's key is its
    smallest case id."""
    rows: list[int] = []
    cols: list[int] = []
    for members in shared:
        first = members[0]
        rows.extend(first for _ in members[1:])
        cols.extend(members[1:])
    if not rows:
        return np.arange(n)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    smallest = np.full(label.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, label, np.arange(n))
    out: np.ndarray = smallest[label]
    return out


def assign(
    case_ids: Sequence[str],
    strata: Sequence[str],
    group: np.ndarray,
    *,
    seed: int,
    ratios: Sequence[float] = DEFAULT_RATIOS,
) -> np.ndarray:
    """The split (an index into ``SPLITS``) of each patient, given in case-id order with its stratum label
    and its group (:func:`groups`). A group's stratum is that of its first patient by case id."""
    r = check_ratios(ratios)
    n = len(case_ids)
    group = np.asarray(group, dtype=np.int64)
    keys = np.flatnonzero(group == np.arange(n))  # a group is numbered by its first (smallest) patient
    sizes = np.bincount(group, minlength=n)
    by_stratum: dict[str, list[int]] = defaultdict(list)
    for g in keys.tolist():
        by_stratum[strata[g]].append(g)
    split_of_group = np.zeros(n, dtype=np.int8)
    for stratum in sorted(by_stratum):
        ordered = sorted(
            by_stratum[stratum], key=lambda g: hashlib.sha256(f"{seed}:{case_ids[g]}".encode()).hexdigest()
        )
        targets = _targets(int(sizes[ordered].sum()), r)
        filled = [0, 0, 0]
        for g in ordered:
            # the split furthest below its target takes the next group (ties: train, val, test)
            gaps = [targets[i] - filled[i] for i in range(3)]
            i = max(range(3), key=lambda j: (gaps[j], -j))
            filled[i] += int(sizes[g])
            split_of_group[g] = i
    out: np.ndarray = split_of_group[group]
    return out


def _targets(total: int, ratios: tuple[float, float, float]) -> list[int]:
    """Whole-patient targets per split by largest remainder."""
    raw = [total * x for x in ratios]
    base = [int(x) for x in raw]
    rest = total - sum(base)
    for i in sorted(range(3), key=lambda j: (-(raw[j] - base[j]), j))[:rest]:
        base[i] += 1
    return base
