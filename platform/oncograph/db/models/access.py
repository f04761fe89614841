"""Who may see what: API principals, their hashed keys, and dbGaP-style project grants."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, PrimaryKeyConstraint, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base

ROLES = ("viewer", "curator", "admin")


class Principal(Base):
    """A user or service of the API. ``role``: viewer reads, curator creates cohorts and exports, admin
    manages keys, grants and ingestion."""

    __tablename__ = "principal"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'curator', 'admin')", name="role"),)

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
