"""IDC imaging: patients as IDC knows them, DICOM studies and DICOM series (one row per index row).

Loaded in bulk from the series index that ``idc-index-data`` ships (``oncograph.ingest.idc_import``). Keys
are the DICOM UIDs (``StudyInstanceUID``, ``SeriesInstanceUID``) and, for patients, IDC's
``(collection_id, PatientID)``. Columns are the index's columns in snake case. Linking an ``idc_patient``
to a GDC patient is an ``identity_link``, not a column here.

The provenance of a series is ``source_document_id`` (one document per index file version, a pointer to the
Parquet file with its sha256) plus ``index_row``, the row of that file its current values came from.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, GraphRow

#: Identifiers (collection ids, PatientIDs, DICOM UIDs) compare byte-wise: faster index builds and joins
#: than a linguistic collation, and the same order on every server.
IDENTIFIER = Text(collation="C")


class IdcPatient(Base, GraphRow):
    """A patient within one IDC collection (``PatientID`` is unique only within its collection).

    For TCGA collections ``patient_id`` is the 12-character case barcode (e.g. ``TCGA-05-4244``), the key
    the identity linker matches against GDC ``submitter_id``.
    """

    __tablename__ = "idc_patient"
    __table_args__ = (
        UniqueConstraint("collection_id", "patient_id"),
        Index("ix_idc_patient_patient_id", "patient_id"),
    )

    collection_id: Mapped[str] = mapped_column(IDENTIFIER)
    patient_id: Mapped[str] = mapped_column(IDENTIFIER)


class ImagingStudy(Base, GraphRow):
    """A DICOM study. Study-level values are the same on every series row of the index for most studies;
    where they differ the study keeps the smallest (earliest date) and its series keep their own rows."""

    __tablename__ = "imaging_study"

    study_instance_uid: Mapped[str] = mapped_column(IDENTIFIER, unique=True)
    idc_patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("idc_patient.id"), index=True)
    collection_id: Mapped[str] = mapped_column(IDENTIFIER, index=True)
    study_date: Mapped[dt.date | None] = mapped_column(Date)
    study_description: Mapped[str | None]
    patient_age: Mapped[str | None]
    """DICOM age string at the time of the study, e.g. ``068Y``."""
    patient_sex: Mapped[str | None]


class ImagingSeries(Base, GraphRow):
    """A DICOM series: one row of IDC's series index (``idc_index``)."""

    __tablename__ = "imaging_series"

    series_instance_uid: Mapped[str] = mapped_column(IDENTIFIER, unique=True)
    imaging_study_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("imaging_study.id"), index=True)
    idc_patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("idc_patient.id"), index=True)
    """The series' own patient (denormalised from the study, so patient-level filters skip a join)."""
    collection_id: Mapped[str] = mapped_column(IDENTIFIER)
    analysis_result_id: Mapped[str | None]
    """Set for derived series (segmentations, annotations) produced by an IDC analysis result."""
    modality: Mapped[str | None] = mapped_column(index=True)
    sop_class_uid: Mapped[str | None]
    sop_class_name: Mapped[str | None]
    transfer_syntax_uid: Mapped[str | None]
    body_part_examined: Mapped[str | None]
    manufacturer: Mapped[str | None]
    manufacturer_model_name: Mapped[str | None]
    series_date: Mapped[dt.date | None] = mapped_column(Date)
    series_description: Mapped[str | None]
    series_number: Mapped[int | None] = mapped_column(BigInteger)
    instance_count: Mapped[int | None]
    series_size_mb: Mapped[float | None]
    license_short_name: Mapped[str | None]
    source_doi: Mapped[str | None]
    series_aws_url: Mapped[str | None]
    crdc_series_uuid: Mapped[uuid.UUID | None]
    series_init_idc_version: Mapped[int | None]
    series_revised_idc_version: Mapped[int | None]
    index_row: Mapped[int] = mapped_column(Integer)
    """Row number (0-based) of this series in the index file that ``source_document_id`` points to."""
    row_hash: Mapped[bytes] = mapped_column(LargeBinary)
    """SHA-1 of the index row's values as read (``oncograph.sources.idc.EncodedBatch.row_hash``): a new
    IDC version updates exactly the series whose hash changed."""
