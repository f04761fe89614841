"""What a saved cohort reads back as: versions, cohort summaries, diffs and member pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

SetOp = Literal["union", "intersection", "difference"]
SET_OPS: tuple[SetOp, ...] = ("union", "intersection", "difference")


@dataclass(slots=True)
class Version:
    cohort_id: int
    version: int
    size: int
    member_hash: str
    releases: list[dict[str, Any]]
    scope: dict[str, Any]
    details: dict[str, Any]
    created_at: dt.datetime
    version_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "size": self.size,
            "member_hash": self.member_hash,
            "releases": self.releases,
            "scope": self.scope,
            "details": self.details,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(slots=True)
class CohortInfo:
    id: int
    name: str
    description: str | None
    owner: str
    kind: str
    definition: dict[str, Any]
    shared: bool
    created_at: dt.datetime
    deleted_at: dt.datetime | None
    latest: Version
    versions: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "kind": self.kind,
            "definition": self.definition,
            "shared": self.shared,
            "created_at": self.created_at.isoformat(),
            "deleted": self.deleted_at is not None,
            "versions": self.versions,
            "latest": self.latest.to_json(),
            # the CLI's compact contract: id, size, member_hash, releases
            "size": self.latest.size,
            "member_hash": self.latest.member_hash,
            "releases": self.latest.releases,
        }


@dataclass(slots=True)
class Diff:
    cohort_id: int
    from_version: int
    to_version: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "cohort_id": self.cohort_id,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "added": self.added,
            "removed": self.removed,
            "added_count": len(self.added),
            "removed_count": len(self.removed),
            "unchanged": self.unchanged,
        }


@dataclass(slots=True)
class MemberPage:
    members: list[dict[str, Any]]
    next_after: int | None
    """Pass as ``after`` for the next page; None on the last page."""
    total: int
