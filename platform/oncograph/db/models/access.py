"""Who may see what: API principals, their hashed keys, and dbGaP-style project grants."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, PrimaryKeyConstraint, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, one_of

ROLES = ("aggregate", "viewer", "curator", "admin")
"""Lowest to highest. ``aggregate``: counts only (small counts suppressed), no records; ``viewer``: records;
``curator``: also creates cohorts and exports; ``admin``: also manages keys, grants and controlled projects."""


class Principal(Base):
    """A user or service of the API. ``role``: viewer reads, curator creates cohorts and exports, admin
    manages keys, grants and ingestion."""

    __tablename__ = "principal"
    __table_args__ = (one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    role: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """An API key, stored as the SHA-256 of the secret (keys are 256-bit random, so a fast hash is safe);
    ``prefix`` (the key's first characters, not secret) finds the row."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    principal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("principal.id"), index=True)
    prefix: Mapped[str] = mapped_column(Text, unique=True)
    key_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AccessGrant(Base):
    """``principal`` may see controlled data of ``project_id`` (a GDC project id such as ``TCGA-BRCA``; a grant
    may precede the project's ingestion)."""

    __tablename__ = "access_grant"
    __table_args__ = (PrimaryKeyConstraint("principal_id", "project_id"),)

    principal_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("principal.id"))
    project_id: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str | None] = mapped_column(Text)
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectControl(Base):
    """An admin's controlled mark for a GDC project id, which may precede the project's first ingest (a trigger
    copies it onto the ``project`` row when the ingest inserts it; ``project.controlled`` is what reads use)."""

    __tablename__ = "project_control"

    project_id: Mapped[str] = mapped_column(Text, primary_key=True)
    controlled: Mapped[bool] = mapped_column(Boolean)
    set_by: Mapped[str | None] = mapped_column(Text)
    set_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
