"""Embeddings of graph objects (slides, series, clinical text, whole patients), one row per object and model;
the encoders that made them; the objects an embedding run could not embed.

``vector`` has no fixed dimension in the column (models differ); similarity search casts to the model's
dimension, and a per-model partial HNSW index on that cast (``oncograph.embeddings.store.ensure_index``)
serves it. ``model`` is the encoder's name and ``model_version`` its version (architecture, weights' sha256,
preprocessing), so a re-run skips an object already embedded with the same version and input checksum.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, one_of

#: How an embedded object was matched to the graph (``unattached``: it matched nothing; never guessed).
ATTACHMENTS = ("graph", "file_id", "md5", "barcode", "series_uid", "unattached")
#: What encoders embed: slide tiles, scan slices, clinical text.
ENCODER_MODALITIES = ("slide", "scan", "text")


class Embedding(Base):
    __tablename__ = "embedding"
    __table_args__ = (
        UniqueConstraint("object_kind", "object_id", "model", "model_version"),
        Index("ix_embedding_model_patient", "model", "patient_id"),
        one_of("attached_by", ATTACHMENTS),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    patient_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    """None only for an object that matched no patient (``attached_by = 'unattached'``)."""
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
    source_uri: Mapped[str | None] = mapped_column(Text)
    """Where the input was read (a path, s3:// URI or GDC /data URL)."""
    input_sha256: Mapped[str | None] = mapped_column(Text, index=True)
    attached_by: Mapped[str] = mapped_column(Text, nullable=False, server_default="graph")
    features_uri: Mapped[str | None] = mapped_column(Text)
    """Per-tile (or per-slice) features: a TRIDENT-layout HDF5 under ONCOGRAPH_HOME or an object store."""
    features_sha256: Mapped[str | None] = mapped_column(Text)
    features_bytes: Mapped[int | None] = mapped_column(BigInteger)
    tiles: Mapped[int | None] = mapped_column(Integer)
    """Tiles (slides), slices (scans) or 1 (text) pooled into ``vector``."""
    source_text: Mapped[str | None] = mapped_column(Text)
    """The rendered clinical summary a text embedding was computed from."""
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    """Reading parameters: µm/px, tile size, mask parameters, window, partial series, ..."""


class Encoder(Base):
    """An encoder registered by a user (a timm/open_clip architecture plus a local checkpoint); the built-in
    defaults are not stored here (``oncograph.embeddings.encoders.BUILTIN``)."""

    __tablename__ = "encoder"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    modalities: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    arch: Mapped[str] = mapped_column(Text, nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    tile_size: Mapped[int] = mapped_column(Integer, nullable=False)
    mpp: Mapped[float | None] = mapped_column(Float)
    mean: Mapped[list[float]] = mapped_column(ARRAY(Float), nullable=False)
    std: Mapped[list[float]] = mapped_column(ARRAY(Float), nullable=False)
    weights: Mapped[str] = mapped_column(Text, nullable=False)
    weights_sha256: Mapped[str] = mapped_column(Text, nullable=False)
    pooling: Mapped[str] = mapped_column(Text, nullable=False, server_default="mean")
    version: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EmbeddingFailure(Base):
    """An object an embedding run could not embed, with why (corrupt slide, unreadable DICOM, no tissue)."""

    __tablename__ = "embedding_failure"
    __table_args__ = (UniqueConstraint("run_id", "source_uri"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("run.id"), nullable=False, index=True)
    modality: Mapped[str] = mapped_column(Text, nullable=False)
    source_uri: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
