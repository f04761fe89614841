"""Validation problems: collected, never raised one at a time (croissant-style issue reports)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one record, located by a readable path."""

    path: str
    """e.g. ``project TCGA-LUAD > case TCGA-05-4244 > diagnosis 2 > age_at_diagnosis``"""
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(slots=True)
class ProblemReport:
    """Every problem found in one batch, in order."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def __bool__(self) -> bool:
        return bool(self.problems)

    def __len__(self) -> int:
        return len(self.problems)
