"""Saved cohorts: a definition (filter, fixed ids or a set operation) and frozen versions of its members."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base


class Cohort(Base):
    """``kind``: ``filter`` (``definition`` = a GDC filter), ``ids`` (a fixed list of patients) or ``set``
    (``definition`` = ``{"op": union|intersection|difference, "operands": [{cohort, version}, ...]}``).
    Deleting is soft (``deleted_at``); versions and members stay."""

    __tablename__ = "cohort"
    __table_args__ = (CheckConstraint("kind IN ('filter', 'ids', 'set')", name="kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("principal.id"), index=True)
    kind: Mapped[str] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    shared: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class CohortVersion(Base):
    """A frozen membership: the members, their hash, and the source releases current when it was made."""

    __tablename__ = "cohort_version"
    __table_args__ = (UniqueConstraint("cohort_id", "version"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    cohort_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cohort.id"))
    version: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    member_hash: Mapped[str] = mapped_column(Text)
    releases: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    scope: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CohortMember(Base):
    __tablename__ = "cohort_member"
    __table_args__ = (PrimaryKeyConstraint("cohort_version_id", "patient_id"),)

    # Both references are checked by statement triggers, not foreign keys (migration 0013: a 100k-member
    # version's per-row RI checks took 1.1 s); the ORM still orders its writes by them. Members are read by
    # version only, so patient_id has no index of its own (migration 0015).
    cohort_version_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cohort_version.id"))
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"))
