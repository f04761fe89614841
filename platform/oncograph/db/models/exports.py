"""Dataset exports of cohort versions: a job (queued, claimed by a worker under a lease, heartbeating while it
runs) whose result is a published destination with sizes, hashes and the run that wrote it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, one_of

EXPORT_STATUSES = ("queued", "running", "succeeded", "failed", "abandoned", "superseded")
"""``queued`` (waiting for a worker), ``running`` (a worker holds its lease), ``succeeded`` (published),
``failed`` (an error, recorded), ``abandoned`` (its workers died too many times), ``superseded`` (a later
export replaced it at the same destination)."""


class Export(Base):
    __tablename__ = "export"
    __table_args__ = (
        one_of("status", EXPORT_STATUSES),
        Index(
            "uq_export_published_destination",
            "destination",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
        ),
        Index(
            "ix_export_claimable",
            "lease_expires_at",
            "id",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    cohort_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cohort.id"), index=True)
    cohort_version: Mapped[int] = mapped_column(Integer)
    principal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("principal.id"), index=True)
    destination: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    status: Mapped[str] = mapped_column(Text, server_default="queued")
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    """``{"stage", "done", "total"}`` while running."""
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """The published manifest (files with sizes and sha256, row counts) once succeeded."""
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("run.id"), index=True)
    """The run of the latest attempt (earlier attempts' runs are ``abandoned`` or ``failed``)."""
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(Text)
    """The worker holding the job (``host:pid:token``) while it runs."""
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    """Past this instant a ``running`` job's worker is presumed dead and another worker may take it."""
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    scope: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """The access scope it was queued under (``Scope.to_json``); a worker runs it under no wider scope."""
    superseded_by_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("export.id"))
    """The later export that replaced this one at its destination (status ``superseded``)."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
