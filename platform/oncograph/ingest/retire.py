"""Retire what a complete harvest of a newer release no longer has (never delete it).

Only rows last seen in a release of the same source are candidates, so a row that a portal file or another
commons also delivered is not retired because the API stopped listing it. A retired row that comes back is
un-retired by the next upsert that sees it (``writer.upsert_kind``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.db.kinds import KINDS


def retire_unseen_gdc(session: Session, *, projects: Sequence[str], release_id: int) -> dict[str, int]:
    """Mark rows of ``projects`` that the GDC release ``release_id`` did not deliver; returns counts per kind."""
    params = {"rel": release_id, "projects": list(projects)}
    candidate = (
        "t.retired_release_id IS NULL AND t.last_seen_release_id <> :rel AND t.last_seen_release_id IN "
        "(SELECT r.id FROM source_release r WHERE r.source = (SELECT source FROM source_release WHERE id = :rel))"
    )
    in_projects = "pr.project_id = ANY(:projects)"
    retired: dict[str, int] = {}
    for kind in KINDS:
        if kind.name == "patient":
            sql = (
                f"UPDATE patient t SET retired_release_id = :rel FROM project pr "
                f"WHERE t.project_id = pr.id AND {in_projects} AND {candidate}"
            )
        elif any(p.column == "patient_id" for p in kind.parents):
            sql = (
                f"UPDATE {kind.name} t SET retired_release_id = :rel FROM patient p JOIN project pr "
                f"ON pr.id = p.project_id WHERE t.patient_id = p.id AND {in_projects} AND {candidate}"
            )
        elif kind.name == "data_file":
            sql = (
                "UPDATE data_file t SET retired_release_id = :rel FROM file_patient fp JOIN patient p "
                f"ON p.id = fp.patient_id JOIN project pr ON pr.id = p.project_id WHERE fp.file_id = t.id "
                f"AND {in_projects} AND {candidate}"
            )
        else:
            continue
        result = session.execute(text(sql), params)
        n = getattr(result, "rowcount", 0)
        if n:
            retired[kind.name] = int(n)
    return retired
