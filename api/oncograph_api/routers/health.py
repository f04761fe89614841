"""``GET /health``: is the API up and does its database answer (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

import oncograph
from oncograph.errors import DatabaseError
from oncograph_api.deps import StateDep
from oncograph_api.errors import problem_responses
from oncograph_api.schemas import Health

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    summary="Health check",
    description="Answers 200 when the API runs and its database answers `SELECT 1`, else 503 (a problem "
    "document). Needs no API key.",
    responses=problem_responses(503),
)
def health(state: StateDep) -> Health:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except Exception as exc:
        raise DatabaseError("the database does not answer") from exc
    return Health(status="ok", database="ok", version=oncograph.__version__)
