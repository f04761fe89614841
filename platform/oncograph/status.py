"""``oncograph status``: what the graph holds, from which releases, recent runs and the quarantine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.db.kinds import KINDS
from oncograph.linking import link_coverage


def graph_status(session: Session, *, recent_runs: int = 10) -> dict[str, Any]:
    counts = {
        kind.name: int(session.execute(text(f"SELECT count(*) FROM {kind.name}")).scalar_one())
        for kind in KINDS
    }
    counts["file_patient"] = int(session.execute(text("SELECT count(*) FROM file_patient")).scalar_one())
    counts["slides"] = int(
        session.execute(text("SELECT count(*) FROM data_file WHERE is_slide")).scalar_one()
    )
    releases = [
        dict(r)
        for r in session.execute(
            text(
                "SELECT r.source, r.release, count(d.id) AS documents FROM source_release r "
                "LEFT JOIN source_document d ON d.release_id = r.id GROUP BY r.id ORDER BY r.id"
            )
        ).mappings()
    ]
    runs = [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()}
        for r in session.execute(
            text(
                "SELECT id, transform, status, started_at, finished_at, CAST(prefect_flow_run_id AS text) "
                "AS prefect_flow_run_id, counts -> 'totals' AS totals, error FROM run ORDER BY id DESC LIMIT :n"
            ),
            {"n": recent_runs},
        ).mappings()
    ]
    quarantine = [
        dict(r)
        for r in session.execute(
            text(
                "SELECT source, entity_type, count(*) AS records, min(location) AS example_location, "
                "min(reasons ->> 0) AS example_reason FROM quarantine GROUP BY source, entity_type "
                "ORDER BY source, entity_type"
            )
        ).mappings()
    ]
    return {
        "counts": counts,
        "commons": link_coverage(session),
        "releases": releases,
        "recent_runs": runs,
        "quarantine": quarantine,
    }
