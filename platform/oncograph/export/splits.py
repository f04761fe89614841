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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from oncograph.errors import ValidationError

SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.7, 0.15, 0.15)


@dataclass(frozen=True, slots=True)
class Assignment:
    case_id: str
    split: str
    stratum: str
    group: str


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


def groups_of(case_ids: Iterable[str], shared: Iterable[Sequence[str]]) -> dict[str, str]:
    """case id -> group key (the smallest case id of its connected component over shared files)."""
    parent: dict[str, str] = {c: c for c in case_ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for members in shared:
        inside = [m for m in members if m in parent]
        for other in inside[1:]:
            a, b = find(inside[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {c: find(c) for c in parent}


def assign(
    strata: Mapping[str, str],
    groups: Mapping[str, str],
    *,
    seed: int,
    ratios: Sequence[float] = DEFAULT_RATIOS,
) -> list[Assignment]:
    """Split assignments for every case in ``strata`` (case id -> stratum label), ordered by case id."""
    r = check_ratios(ratios)
    members: dict[str, list[str]] = defaultdict(list)
    for case_id in sorted(strata):
        members[groups.get(case_id, case_id)].append(case_id)
    by_stratum: dict[str, list[str]] = defaultdict(list)
    for key, cases in members.items():
        by_stratum[strata[cases[0]]].append(key)
    split_of: dict[str, str] = {}
    for stratum in sorted(by_stratum):
        keys = sorted(by_stratum[stratum], key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
        sizes = [len(members[k]) for k in keys]
        total = sum(sizes)
        targets = _targets(total, r)
        filled = [0, 0, 0]
        for key, size in zip(keys, sizes, strict=True):
            # the split furthest below its target takes the next group (ties: train, val, test)
            gaps = [targets[i] - filled[i] for i in range(3)]
            i = max(range(3), key=lambda j: (gaps[j], -j))
            filled[i] += size
            split_of[key] = SPLITS[i]
    return [
        Assignment(
            case_id, split_of[groups.get(case_id, case_id)], strata[case_id], groups.get(case_id, case_id)
        )
        for case_id in sorted(strata)
    ]


def _targets(total: int, ratios: tuple[float, float, float]) -> list[int]:
    """Whole-patient targets per split by largest remainder."""
    raw = [total * x for x in ratios]
    base = [int(x) for x in raw]
    rest = total - sum(base)
    for i in sorted(range(3), key=lambda j: (-(raw[j] - base[j]), j))[:rest]:
        base[i] += 1
    return base
