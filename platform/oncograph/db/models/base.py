"""The ORM base: one place for the boring decisions (naming convention, timestamps, provenance columns).

The schema itself is created only by Alembic migrations (``oncograph/db/migrations``); these models describe
it for queries and for autogenerate diffs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# Stable constraint names make Alembic autogenerate diffs deterministic.
# https://docs.sqlalchemy.org/en/20/core/constraints.html#configuring-constraint-naming-conventions
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: Text,
        int: Integer,
        float: Double,
        bool: Boolean,
        uuid.UUID: UUID(as_uuid=True),
    }


def one_of(column: str, values: tuple[str, ...], *, name: str | None = None) -> CheckConstraint:
    """A CHECK that ``column`` holds one of ``values``: the tuple that names a closed set (roles, statuses) is the
    one place the set is written; the migration that creates the constraint spells the same values."""
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name or column)


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


LINEAGE_COLUMNS = (
    "source_document_id",
    "first_seen_release_id",
    "last_seen_release_id",
    "retired_release_id",
)
"""The lineage columns of every graph row (:class:`GraphRow`): the one list that readers and writers use."""


class GraphRow(Timestamps):
    """Columns every graph row carries: a surrogate key and its lineage.

    ``source_document_id`` is the exact document version the row's current values were built from;
    ``first_seen_release_id``/``last_seen_release_id`` bracket the data releases in which it was seen;
    ``retired_release_id`` is the release of a complete harvest that no longer had it (rows are never
    deleted; a row that comes back is un-retired).
    """

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)

    @declared_attr
    def source_document_id(cls) -> Mapped[int]:
        return mapped_column(BigInteger, ForeignKey("source_document.id"), nullable=False, index=True)

    @declared_attr
    def first_seen_release_id(cls) -> Mapped[int]:
        return mapped_column(Integer, ForeignKey("source_release.id"), nullable=False)

    @declared_attr
    def last_seen_release_id(cls) -> Mapped[int]:
        return mapped_column(Integer, ForeignKey("source_release.id"), nullable=False)

    @declared_attr
    def retired_release_id(cls) -> Mapped[int | None]:
        return mapped_column(Integer, ForeignKey("source_release.id"), nullable=True)


class GdcKeyed(GraphRow):
    """A graph row keyed by a GDC UUID.

    ``key_derived`` is true when the source did not carry the UUID (e.g. a 2020s portal TSV has no
    ``diagnosis_id``) and the key was derived deterministically (UUIDv5) from the parent and submitter id.
    """

    submitter_id: Mapped[str | None]
    key_derived: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


def uuid_key(*, unique: bool = True) -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), nullable=False, unique=unique)
