"""Runs (one execution of a transform) and source releases. Functions take a Session and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

import oncograph

RunStatus = Literal["running", "succeeded", "failed", "abandoned"]


@dataclass(frozen=True, slots=True)
class RunHandle:
    id: int
    transform: str


def ensure_release(
    session: Session, *, source: str, release: str, details: dict[str, Any] | None = None
) -> int:
    """The id of ``(source, release)``, recorded on first sight."""
    row = session.execute(
        text(
            "INSERT INTO source_release (source, release, details) VALUES (:source, :release, CAST(:details AS jsonb)) "
            "ON CONFLICT (source, release) DO UPDATE SET source = EXCLUDED.source RETURNING id"
        ),
        {"source": source, "release": release, "details": orjson.dumps(details or {}).decode()},
    ).one()
    return int(row[0])


def start_run(
    session: Session,
    *,
    transform: str,
    parameters: dict[str, Any],
    prefect_flow_run_id: uuid.UUID | str | None = None,
    principal_id: int | None = None,
    projects: Sequence[str] | None = None,
) -> RunHandle:
    """Record a running run.

    Args:
        principal_id: the API principal that started it (None: the local operator). The access policy shows
            a principal's runs only to it and to admins.
        projects: GDC project ids whose data the run reads or writes (default: ``parameters["projects"]``);
            :func:`finish_run` adds the projects of the patients built from the run's documents. A run is
            hidden from a scope that may not see one of its projects.
    """
    named = projects if projects is not None else parameters.get("projects")
    listed = sorted({str(p) for p in named}) if isinstance(named, list | tuple | set | frozenset) else []
    row = session.execute(
        text(
            "INSERT INTO run (transform, code_version, parameters, status, prefect_flow_run_id, principal_id, "
            "projects) VALUES (:transform, :version, CAST(:params AS jsonb), 'running', :flow_run, :principal, "
            ":projects) RETURNING id"
        ),
        {
            "transform": transform,
            "version": oncograph.__version__,
            "params": orjson.dumps(parameters, default=str).decode(),
            "flow_run": str(prefect_flow_run_id) if prefect_flow_run_id else None,
            "principal": principal_id,
            "projects": listed,
        },
    ).one()
    return RunHandle(int(row[0]), transform)


def set_run_release(session: Session, run: RunHandle, release_id: int) -> None:
    session.execute(
        text("UPDATE run SET source_release_id = :rel WHERE id = :id"), {"rel": release_id, "id": run.id}
    )


# The GDC projects of what run :id read or wrote (see finish_run).
_TOUCHED_PROJECTS = """
SELECT pr.project_id FROM patient p JOIN source_document d ON d.id = p.source_document_id
  JOIN project pr ON pr.id = p.project_id WHERE d.run_id = :id
UNION
SELECT pr.project_id FROM idc_patient ip
  JOIN patient p ON p.submitter_id = ip.patient_id JOIN project pr ON pr.id = p.project_id
  WHERE ip.source_document_id IN (SELECT id FROM source_document WHERE run_id = :id)
     OR ip.collection_id IN (SELECT jsonb_array_elements_text(CASE jsonb_typeof(r.parameters -> 'collections')
          WHEN 'array' THEN r.parameters -> 'collections' ELSE '[]'::jsonb END) FROM run r WHERE r.id = :id)
UNION
SELECT pr.project_id FROM pdc_case c
  JOIN patient p ON p.case_id = c.gdc_case_id OR p.submitter_id = c.case_submitter_id
  JOIN project pr ON pr.id = p.project_id
  WHERE c.source_document_id IN (SELECT id FROM source_document WHERE run_id = :id)
UNION
SELECT pr.project_id FROM embedding e JOIN patient p ON p.id = e.patient_id JOIN project pr ON pr.id = p.project_id
  WHERE e.run_id = :id
"""


def finish_run(
    session: Session, run: RunHandle, *, status: RunStatus, counts: dict[str, Any], error: str | None = None
) -> None:
    """Record the outcome, and add to ``run.projects`` the GDC projects whose data the run touched that its
    parameters did not name: the projects of the patients whose current rows were built from documents this
    run fetched, and of the GDC patients that IDC patients and PDC cases of this run (or, for an IDC import, of
    the collections it names) stand for — by identity link or by the TCGA barcode. A re-run that changed
    nothing still names the projects of what it read."""
    session.execute(
        text(
            "UPDATE run SET status = :status, counts = CAST(:counts AS jsonb), error = :error, "
            "finished_at = now(), projects = ARRAY(SELECT DISTINCT x FROM unnest(coalesce(run.projects, '{}') "
            f"|| ARRAY({_TOUCHED_PROJECTS})) AS x ORDER BY x) WHERE id = :id"
        ),
        {"status": status, "counts": orjson.dumps(counts).decode(), "error": error, "id": run.id},
    )
