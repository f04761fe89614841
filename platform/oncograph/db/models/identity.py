"""Identity links: one patient across the commons (GDC case <-> IDC PatientID <-> PDC case), made explicit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, Double, ForeignKey, Index, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base


class IdentityLink(Base):
    """``patient`` (a GDC case) is the same person as ``external_id`` in ``commons`` (within ``namespace``,
    e.g. the IDC collection or the PDC project), established by ``method`` with ``confidence``."""

    __tablename__ = "identity_link"
    __table_args__ = (
        UniqueConstraint("patient_id", "commons", "namespace", "external_id"),
        Index("ix_identity_link_external", "commons", "namespace", "external_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    commons: Mapped[str] = mapped_column(Text)
    """``idc`` or ``pdc`` (the GDC case is the patient itself)."""
    namespace: Mapped[str] = mapped_column(Text)
    external_id: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    """``exact_id`` (same UUID), ``barcode`` (12-character TCGA case barcode), ``source_declared``."""
    confidence: Mapped[float] = mapped_column(Double)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("run.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
