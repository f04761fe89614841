"""Biospecimens (sample -> portion -> analyte -> aliquot, portion -> slide) and data files."""

from __future__ import annotations

import uuid

from sqlalchemy import ARRAY, BigInteger, Boolean, Computed, ForeignKey, Index, PrimaryKeyConstraint, Text
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, GdcKeyed, GraphRow, Timestamps, uuid_key


class Sample(Base, GdcKeyed):
    __tablename__ = "sample"

    sample_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    sample_type: Mapped[str | None] = mapped_column(index=True)
    sample_type_id: Mapped[str | None]
    tissue_type: Mapped[str | None]
    tumor_descriptor: Mapped[str | None]
    specimen_type: Mapped[str | None]
    preservation_method: Mapped[str | None]
    composition: Mapped[str | None]
    is_ffpe: Mapped[bool | None]
    oct_embedded: Mapped[bool | None]
    days_to_collection: Mapped[int | None]
    days_to_sample_procurement: Mapped[int | None]


class Portion(Base, GdcKeyed):
    __tablename__ = "portion"

    portion_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    sample_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sample.id"), index=True)
    portion_number: Mapped[str | None]
    is_ffpe: Mapped[bool | None]
    weight: Mapped[float | None]


class Analyte(Base, GdcKeyed):
    __tablename__ = "analyte"

    analyte_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    portion_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("portion.id"), index=True)
    analyte_type: Mapped[str | None]
    analyte_type_id: Mapped[str | None]
    concentration: Mapped[float | None]
    amount: Mapped[float | None]
    a260_a280_ratio: Mapped[float | None]


class Aliquot(Base, GdcKeyed):
    __tablename__ = "aliquot"

    aliquot_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    analyte_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("analyte.id"), index=True)
    analyte_type: Mapped[str | None]
    concentration: Mapped[float | None]
    amount: Mapped[float | None]
    source_center: Mapped[str | None]


class Slide(Base, GdcKeyed):
    __tablename__ = "slide"

    slide_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    portion_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("portion.id"), index=True)
    section_location: Mapped[str | None]
    percent_tumor_cells: Mapped[float | None]
    percent_tumor_nuclei: Mapped[float | None]
    percent_normal_cells: Mapped[float | None]
    percent_stromal_cells: Mapped[float | None]
    percent_necrosis: Mapped[float | None]
    percent_lymphocyte_infiltration: Mapped[float | None]


class DataFile(Base, GraphRow):
    """A GDC file (slides, omics, clinical supplements). ``slide_kind`` is ``diagnostic``/``tissue`` for
    slide images, from ``experimental_strategy`` or, when a source lacks it, the TCGA file-name code."""

    __tablename__ = "data_file"
    __table_args__ = (Index("ix_data_file_type", "data_category", "data_type"),)

    file_id: Mapped[uuid.UUID] = uuid_key()
    submitter_id: Mapped[str | None]
    file_name: Mapped[str | None]
    md5sum: Mapped[str | None]
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    data_category: Mapped[str | None]
    data_type: Mapped[str | None]
    experimental_strategy: Mapped[str | None] = mapped_column(index=True)
    data_format: Mapped[str | None]
    platform: Mapped[str | None]
    access: Mapped[str | None] = mapped_column(index=True)
    acl: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    state: Mapped[str | None]
    version: Mapped[str | None]
    data_release: Mapped[str | None]
    workflow_type: Mapped[str | None]
    slide_kind: Mapped[str | None]
    is_slide: Mapped[bool] = mapped_column(
        Boolean, Computed("slide_kind IS NOT NULL", persisted=True), index=True
    )


class FilePatient(Base, Timestamps):
    """A file's linked cases (many-to-many)."""

    __tablename__ = "file_patient"
    __table_args__ = (PrimaryKeyConstraint("file_id", "patient_id"),)

    file_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("data_file.id"))
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)


class FileSample(Base, Timestamps):
    """A file's linked samples (many-to-many)."""

    __tablename__ = "file_sample"
    __table_args__ = (PrimaryKeyConstraint("file_id", "sample_id"),)

    file_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("data_file.id"))
    sample_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sample.id"), index=True)
