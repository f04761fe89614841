"""What one caller may see: the access scope every read of the graph is computed under.

Controlled data (GDC files with ``access = controlled``, and every record of a project an admin marked
``controlled``) is visible only with a grant for its project. A scope is part of a frozen cohort version,
because membership computed under different grants differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Scope:
    """``unrestricted``: the local operator (CLI with direct database access) sees everything.
    Otherwise ``granted_projects`` (GDC project ids) are the projects whose controlled data is visible."""

    principal: str | None = None
    role: str | None = None
    granted_projects: frozenset[str] = field(default_factory=frozenset)
    unrestricted: bool = False

    @classmethod
    def everything(cls, principal: str = "local") -> Scope:
        return cls(principal=principal, role="admin", unrestricted=True)

    def may_see_project(self, project_id: str | None, *, controlled: bool) -> bool:
        return (
            self.unrestricted
            or not controlled
            or (project_id is not None and project_id in self.granted_projects)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "unrestricted": self.unrestricted,
            "granted_projects": sorted(self.granted_projects),
        }
