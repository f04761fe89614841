"""Lineage: which source release, which run and which exact document produced each graph row."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, one_of


class SourceRelease(Base):
    """One data release of one source (GDC ``/status`` ``data_release``; a portal export's own file)."""

    __tablename__ = "source_release"
    __table_args__ = (UniqueConstraint("source", "release"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    release: Mapped[str] = mapped_column(Text, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    first_seen_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


RUN_STATUSES = ("running", "succeeded", "failed", "abandoned")
"""``abandoned``: the process died while running (the next holder of its lock, or of its export's lease, marks
it)."""


class Run(Base):
    """One execution of a transform (harvest, import, ...), with its parameters, status and counts."""

    __tablename__ = "run"
    __table_args__ = (one_of("status", RUN_STATUSES),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    transform: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    code_version: Mapped[str] = mapped_column(Text, nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="running")
    started_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)
    prefect_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    source_release_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("source_release.id"))
    principal_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("principal.id"), index=True)
    """The API principal that started it; None for the local operator (CLI, flows, schedules)."""
    projects: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    """GDC project ids whose data it read or wrote; None when unknown (runs recorded before this column)."""


class SourceDocument(Base):
    """Append-only: every distinct version of every record fetched, with the raw content.

    A version is (source, entity_type, entity_id, content_hash): re-fetching identical content adds nothing;
    changed content adds a row and the old one stays, so any earlier state can be reconstructed.
    """

    __tablename__ = "source_document"
    __table_args__ = (
        UniqueConstraint("source", "entity_type", "entity_id", "content_hash"),
        Index("ix_source_document_entity_id", "entity_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    entity_type: Mapped[str] = mapped_column(Text, nullable=False)
    entity_id: Mapped[str] = mapped_column(Text, nullable=False)
    content_hash: Mapped[str] = mapped_column(Text, nullable=False)
    release_id: Mapped[int] = mapped_column(Integer, ForeignKey("source_release.id"), nullable=False)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("run.id"), nullable=False)
    location: Mapped[str | None] = mapped_column(Text)
    raw_zstd: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    """The content as the source sent it: its JSON text, zstd-compressed by the client
    (``oncograph.db.documents.pack`` / ``unpack``; migration 0017)."""
    fetched_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Quarantine(Base):
    """A record that failed validation, kept with every reason and its raw content; nothing else stored."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("run.id"), nullable=False, index=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    entity_type: Mapped[str] = mapped_column(Text, nullable=False)
    entity_id: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Text, nullable=False)
    reasons: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    raw: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
