"""Embeddings of graph objects (slides, series, clinical text, whole patients), one row per object and model.

``vector`` has no fixed dimension in the column (models differ); similarity search casts to the model's
dimension, and a per-model partial HNSW index on that cast (``oncograph.embeddings.store.ensure_index``)
serves it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base


class Embedding(Base):
    __tablename__ = "embedding"
    __table_args__ = (
        UniqueConstraint("object_kind", "object_id", "model", "model_version"),
        Index("ix_embedding_model_patient", "model", "patient_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    object_kind: Mapped[str] = mapped_column(Text)
    """``slide``, ``data_file``, ``imaging_series``, ``clinical_text`` or ``patient``."""
    object_id: Mapped[str] = mapped_column(Text)
    modality: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    model_version: Mapped[str] = mapped_column(Text)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[Any] = mapped_column(Vector())
    run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("run.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
