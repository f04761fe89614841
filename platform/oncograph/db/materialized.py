"""Materialised views the read paths use, and their refresh (run after every ingest by identity linking)."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from oncograph.db.graph_version import mark_graph_changed


def refresh_patient_modalities(conn: Connection | Session) -> None:
    """Recompute ``patient_modality`` from the graph (the modalities every patient has). Call after changing
    files, IDC series or identity links outside an ingest (ingests refresh it when they link)."""
    # CONCURRENTLY (the view has a unique index): facet reads are never blocked by an ingest's refresh
    conn.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY patient_modality"))
    mark_graph_changed(conn)
