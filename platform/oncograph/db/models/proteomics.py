"""PDC (Proteomic Data Commons) proteomics: studies, cases, the study-case link and files.

Keys (see ``migrations/NOTES.md`` 0004):

- ``pdc_study``: ``pdc_study_id`` (``PDC000111``), PDC's stable public id; ``study_id`` (a UUID per study
  version in PDC) is an attribute.
- ``pdc_case``: ``case_id`` is PDC's case UUID. A record without one (the 2019-era ``case`` query answered
  ``case_submitter_id``/``project_submitter_id`` only) gets a UUIDv5 of ``(project_submitter_id,
  case_submitter_id)`` and ``key_derived = true``; when the real id arrives later the row is promoted in place.
  ``(project_submitter_id, case_submitter_id)`` is unique as well.
- ``pdc_file``: PDC's ``file_id`` UUID, else a UUIDv5 of ``(study_submitter_id or pdc_study_id, file_name)``
  with ``key_derived = true`` (promoted like cases).

Foreign keys to other graph rows end in ``_row_id`` because PDC already uses ``study_id`` and ``case_id``
for its own UUIDs.
"""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, GraphRow, uuid_key


class PdcStudy(Base, GraphRow):
    """A PDC study (one analytical fraction of one experiment), from the ``study`` query."""

    __tablename__ = "pdc_study"

    pdc_study_id: Mapped[str] = mapped_column(nullable=False, unique=True)
    study_id: Mapped[str | None]
    """PDC's UUID of the study version (text: recordings are not all UUIDs)."""
    study_submitter_id: Mapped[str | None] = mapped_column(index=True)
    study_name: Mapped[str | None]
    study_shortname: Mapped[str | None]
    submitter_id_name: Mapped[str | None]
    study_version: Mapped[str | None]
    is_latest_version: Mapped[str | None]
    program_name: Mapped[str | None]
    program_id: Mapped[str | None]
    project_name: Mapped[str | None]
    project_id: Mapped[str | None]
    project_submitter_id: Mapped[str | None] = mapped_column(index=True)
    disease_type: Mapped[str | None]
    primary_site: Mapped[str | None]
    analytical_fraction: Mapped[str | None]
    experiment_type: Mapped[str | None]
    acquisition_type: Mapped[str | None]
    cases_count: Mapped[int | None]
    aliquots_count: Mapped[int | None]
    files_count: Mapped[int | None]
    """Sum of ``filesCount[].files_count`` when PDC gives every count (PDC has no single total field)."""
    embargo_date: Mapped[str | None]
    """PDC's ``Date`` scalar, kept as delivered."""


class PdcCase(Base, GraphRow):
    """A PDC case. ``gdc_case_id`` is set only when PDC itself declares the GDC case (see ``gdc_case_id_field``)."""

    __tablename__ = "pdc_case"
    __table_args__ = (UniqueConstraint("project_submitter_id", "case_submitter_id"),)

    case_id: Mapped[uuid.UUID] = uuid_key()
    key_derived: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    case_submitter_id: Mapped[str] = mapped_column(nullable=False, index=True)
    project_submitter_id: Mapped[str | None] = mapped_column(index=True)
    project_id: Mapped[str | None]
    disease_type: Mapped[str | None]
    primary_site: Mapped[str | None]
    tissue_source_site_code: Mapped[str | None]
    consent_type: Mapped[str | None]
    case_is_ref: Mapped[str | None]
    gdc_case_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    gdc_case_id_field: Mapped[str | None]
    """Where PDC declared it: ``gdc_case_id`` (2019-era field) or ``externalReferences`` (GDC reference)."""


class PdcStudyCase(Base, GraphRow):
    """A case that a study's ``paginatedCasesSamplesAliquots`` listed; lineage points to that case document."""

    __tablename__ = "pdc_study_case"
    __table_args__ = (UniqueConstraint("study_row_id", "case_row_id"),)

    study_row_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("pdc_study.id"), nullable=False)
    case_row_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("pdc_case.id"), nullable=False, index=True
    )


class PdcFile(Base, GraphRow):
    """A PDC file from ``filesPerStudy``. ``study_row_id`` is null while its study is not stored."""

    __tablename__ = "pdc_file"
    __table_args__ = (Index("ix_pdc_file_type", "data_category", "file_type"),)

    file_id: Mapped[uuid.UUID] = uuid_key()
    key_derived: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    file_name: Mapped[str | None]
    file_submitter_id: Mapped[str | None]
    file_type: Mapped[str | None]
    file_format: Mapped[str | None]
    data_category: Mapped[str | None]
    md5sum: Mapped[str | None]
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    file_location: Mapped[str | None]
    pdc_study_id: Mapped[str | None] = mapped_column(index=True)
    study_submitter_id: Mapped[str | None] = mapped_column(index=True)
    study_row_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("pdc_study.id"), index=True)
