"""Dataset exports of cohort versions: status, destination, sizes, hashes and the run that wrote them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Integer, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base

EXPORT_STATUSES = ("queued", "running", "succeeded", "failed")


class Export(Base):
    __tablename__ = "export"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
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
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
