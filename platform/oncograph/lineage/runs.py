"""Runs (one execution of a transform) and source releases. Functions take a Session and never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

import oncograph

RunStatus = Literal["running", "succeeded", "failed"]


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
) -> RunHandle:
    row = session.execute(
        text(
            "INSERT INTO run (transform, code_version, parameters, status, prefect_flow_run_id) "
            "VALUES (:transform, :version, CAST(:params AS jsonb), 'running', :flow_run) RETURNING id"
        ),
        {
            "transform": transform,
            "version": oncograph.__version__,
            "params": orjson.dumps(parameters, default=str).decode(),
            "flow_run": str(prefect_flow_run_id) if prefect_flow_run_id else None,
        },
    ).one()
    return RunHandle(int(row[0]), transform)


def set_run_release(session: Session, run: RunHandle, release_id: int) -> None:
    session.execute(
        text("UPDATE run SET source_release_id = :rel WHERE id = :id"), {"rel": release_id, "id": run.id}
    )


def finish_run(
    session: Session, run: RunHandle, *, status: RunStatus, counts: dict[str, Any], error: str | None = None
) -> None:
    session.execute(
        text(
            "UPDATE run SET status = :status, counts = CAST(:counts AS jsonb), error = :error, "
            "finished_at = now() WHERE id = :id"
        ),
        {"status": status, "counts": orjson.dumps(counts).decode(), "error": error, "id": run.id},
    )
