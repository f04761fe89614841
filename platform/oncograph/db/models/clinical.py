"""The clinical side of the patient graph: programs, projects, patients (GDC cases) and their records.

Column names are the GDC dictionary's own property names, so a GDC field path maps onto a column by name.
Values the graph does not type here stay in the row's source document (nothing is dropped).
"""

from __future__ import annotations

import uuid

from sqlalchemy import ARRAY, BigInteger, Boolean, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from oncograph.db.models.base import Base, GdcKeyed, GraphRow, uuid_key


class Program(Base, GraphRow):
    __tablename__ = "program"

    name: Mapped[str] = mapped_column(unique=True)
    program_id: Mapped[uuid.UUID | None]
    dbgap_accession_number: Mapped[str | None]


class Project(Base, GraphRow):
    __tablename__ = "project"

    project_id: Mapped[str] = mapped_column(unique=True)
    program_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("program.id"), index=True)
    name: Mapped[str | None]
    primary_site: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    disease_type: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    dbgap_accession_number: Mapped[str | None]
    state: Mapped[str | None]
    released: Mapped[bool | None]
    controlled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    """Marked by an admin: all of the project's data is visible only with a grant for it."""


class Patient(Base, GraphRow):
    """A GDC case: the centre of the graph. ``case_id`` is the GDC UUID."""

    __tablename__ = "patient"

    case_id: Mapped[uuid.UUID] = uuid_key()
    submitter_id: Mapped[str | None] = mapped_column(index=True)
    project_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("project.id"), index=True)
    primary_site: Mapped[str | None] = mapped_column(index=True)
    disease_type: Mapped[str | None] = mapped_column(index=True)
    index_date: Mapped[str | None]
    consent_type: Mapped[str | None]
    days_to_consent: Mapped[int | None]
    lost_to_followup: Mapped[str | None]
    days_to_lost_to_followup: Mapped[int | None]
    state: Mapped[str | None]


class Demographic(Base, GdcKeyed):
    """One per patient. ``sex`` is ``sex_at_birth`` (July-2025 dictionary) or, before it, ``gender``."""

    __tablename__ = "demographic"

    demographic_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), unique=True)
    sex: Mapped[str | None] = mapped_column(index=True)
    sex_at_birth: Mapped[str | None]
    gender: Mapped[str | None]
    race: Mapped[str | None] = mapped_column(index=True)
    ethnicity: Mapped[str | None]
    vital_status: Mapped[str | None] = mapped_column(index=True)
    days_to_birth: Mapped[int | None]
    days_to_death: Mapped[int | None]
    age_at_index: Mapped[int | None]
    age_is_obfuscated: Mapped[bool | None]
    year_of_birth: Mapped[int | None]
    year_of_death: Mapped[int | None]
    cause_of_death: Mapped[str | None]
    country_of_residence_at_enrollment: Mapped[str | None]


class Diagnosis(Base, GdcKeyed):
    """Several per patient (primary, recurrence, ...). ``stage`` is ``ajcc_pathologic_stage`` or the
    pre-2019 ``tumor_stage`` in the same spelling ("stage iia" -> "Stage IIA")."""

    __tablename__ = "diagnosis"
    __table_args__ = (Index("ix_diagnosis_stage", "stage"),)

    diagnosis_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    primary_diagnosis: Mapped[str | None] = mapped_column(index=True)
    morphology: Mapped[str | None]
    icd_10_code: Mapped[str | None]
    tissue_or_organ_of_origin: Mapped[str | None]
    site_of_resection_or_biopsy: Mapped[str | None]
    classification_of_tumor: Mapped[str | None]
    diagnosis_is_primary_disease: Mapped[bool | None]
    age_at_diagnosis: Mapped[int | None]
    days_to_diagnosis: Mapped[int | None]
    days_to_last_follow_up: Mapped[int | None]
    days_to_recurrence: Mapped[int | None]
    year_of_diagnosis: Mapped[int | None]
    stage: Mapped[str | None]
    ajcc_pathologic_stage: Mapped[str | None]
    tumor_stage: Mapped[str | None]
    ajcc_pathologic_t: Mapped[str | None]
    ajcc_pathologic_n: Mapped[str | None]
    ajcc_pathologic_m: Mapped[str | None]
    ajcc_clinical_stage: Mapped[str | None]
    ajcc_staging_system_edition: Mapped[str | None]
    figo_stage: Mapped[str | None]
    tumor_grade: Mapped[str | None]
    tumor_of_origin: Mapped[str | None]
    progression_or_recurrence: Mapped[str | None]
    last_known_disease_status: Mapped[str | None]
    prior_malignancy: Mapped[str | None]
    prior_treatment: Mapped[str | None]
    synchronous_malignancy: Mapped[str | None]


class Treatment(Base, GdcKeyed):
    __tablename__ = "treatment"

    treatment_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    diagnosis_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("diagnosis.id"), index=True)
    treatment_type: Mapped[str | None] = mapped_column(index=True)
    treatment_or_therapy: Mapped[str | None]
    therapeutic_agents: Mapped[str | None]
    treatment_intent_type: Mapped[str | None]
    initial_disease_status: Mapped[str | None]
    regimen_or_line_of_therapy: Mapped[str | None]
    treatment_outcome: Mapped[str | None]
    days_to_treatment_start: Mapped[int | None]
    days_to_treatment_end: Mapped[int | None]
    number_of_cycles: Mapped[int | None]


class PathologyDetail(Base, GdcKeyed):
    __tablename__ = "pathology_detail"

    pathology_detail_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    diagnosis_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("diagnosis.id"), index=True)
    lymph_nodes_positive: Mapped[int | None]
    lymph_nodes_tested: Mapped[int | None]
    tumor_largest_dimension_diameter: Mapped[float | None]
    vascular_invasion_present: Mapped[str | None]
    lymphatic_invasion_present: Mapped[str | None]
    perineural_invasion_present: Mapped[str | None]
    margin_status: Mapped[str | None]
    consistent_pathology_review: Mapped[str | None]


class FollowUp(Base, GdcKeyed):
    __tablename__ = "follow_up"

    follow_up_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    days_to_follow_up: Mapped[int | None]
    timepoint_category: Mapped[str | None]
    disease_response: Mapped[str | None]
    progression_or_recurrence: Mapped[str | None]
    days_to_progression: Mapped[int | None]
    days_to_recurrence: Mapped[int | None]
    ecog_performance_status: Mapped[str | None]
    karnofsky_performance_status: Mapped[str | None]
    bmi: Mapped[float | None]
    height: Mapped[float | None]
    weight: Mapped[float | None]


class Exposure(Base, GdcKeyed):
    __tablename__ = "exposure"

    exposure_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    exposure_type: Mapped[str | None]
    tobacco_smoking_status: Mapped[str | None]
    pack_years_smoked: Mapped[float | None]
    cigarettes_per_day: Mapped[float | None]
    years_smoked: Mapped[float | None]
    alcohol_history: Mapped[str | None]
    alcohol_intensity: Mapped[str | None]
    bmi: Mapped[float | None]
    height: Mapped[float | None]
    weight: Mapped[float | None]


class FamilyHistory(Base, GdcKeyed):
    __tablename__ = "family_history"

    family_history_id: Mapped[uuid.UUID] = uuid_key()
    patient_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("patient.id"), index=True)
    relationship_type: Mapped[str | None]
    relationship_gender: Mapped[str | None]
    relative_with_cancer_history: Mapped[str | None]
    relationship_primary_diagnosis: Mapped[str | None]
    relationship_age_at_diagnosis: Mapped[int | None]
