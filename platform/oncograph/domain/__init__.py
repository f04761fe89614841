"""Pure domain types shared by every layer: source records and validation problems."""

from oncograph.domain.problems import Problem, ProblemReport
from oncograph.domain.records import EntityType, SourceRecord

__all__ = ["EntityType", "Problem", "ProblemReport", "SourceRecord"]
