"""Which portal column belongs to which GDC entity, and how the entities nest.

Portal v2 TSVs name columns ``<entity>.<field>`` (``diagnoses.age_at_diagnosis``); portal v1 TSVs use bare field
names, so the entity is looked up in the field sets below (taken from the v2 headers of real exports and from
the GDC dictionary). A column is mapped to a ``(entity, field)`` pair where ``entity`` is one of:

- ``cases``: a scalar of the case itself (``case_id``, ``submitter_id``, ``primary_site`` ...);
- ``project``: a key of the case's ``project`` object;
- ``demographic``: the single demographic object;
- a list entity (``diagnoses``, ``treatments``, ``follow_ups`` ...), nested as :data:`PARENT` says.
"""

from __future__ import annotations

from typing import Final

ColumnMap = dict[str, tuple[str, str]]
"""TSV column name -> (entity, field)."""

SINGLE_ENTITIES: Final = ("demographic",)
TOP_LIST_ENTITIES: Final = ("diagnoses", "follow_ups", "exposures", "family_histories")
PARENT: Final[dict[str, str]] = {
    "treatments": "diagnoses",
    "pathology_details": "diagnoses",
    "molecular_tests": "follow_ups",
    "other_clinical_attributes": "follow_ups",
}
"""Child list entity -> the list entity it nests under, as in a GDC ``/cases`` hit."""
ID_FIELD: Final[dict[str, str]] = {
    "diagnoses": "diagnosis_id",
    "treatments": "treatment_id",
    "pathology_details": "pathology_detail_id",
    "follow_ups": "follow_up_id",
    "molecular_tests": "molecular_test_id",
    "other_clinical_attributes": "other_clinical_attribute_id",
    "exposures": "exposure_id",
    "family_histories": "family_history_id",
}
KNOWN_ENTITIES: Final = frozenset({"cases", "project", *SINGLE_ENTITIES, *TOP_LIST_ENTITIES, *PARENT})

CASE_FIELDS: Final = frozenset(
    {
        "primary_site",
        "disease_type",
        "index_date",
        "consent_type",
        "days_to_consent",
        "lost_to_followup",
        "days_to_lost_to_followup",
    }
)
DEMOGRAPHIC_FIELDS: Final = frozenset(
    {
        "age_at_index",
        "age_is_obfuscated",
        "cause_of_death",
        "cause_of_death_source",
        "country_of_birth",
        "country_of_residence_at_enrollment",
        "days_to_birth",
        "days_to_death",
        "demographic_id",
        "education_level",
        "ethnicity",
        "gender",
        "sex_at_birth",
        "marital_status",
        "occupation_duration_years",
        "population_group",
        "premature_at_birth",
        "race",
        "vital_status",
        "weeks_gestation_at_birth",
        "year_of_birth",
        "year_of_birth_range",
        "year_of_death",
    }
)
TREATMENT_FIELDS: Final = frozenset(
    {
        "therapeutic_agents",
        "days_to_treatment",
        "days_to_treatment_start",
        "days_to_treatment_end",
        "initial_disease_status",
        "regimen_or_line_of_therapy",
        "number_of_cycles",
        "reason_treatment_ended",
        "route_of_administration",
        "chemo_concurrent_to_radiation",
    }
)
EXPOSURE_FIELDS: Final = frozenset(
    {
        "age_at_last_exposure",
        "age_at_onset",
        "alcohol_days_per_week",
        "alcohol_drinks_per_day",
        "alcohol_frequency",
        "alcohol_history",
        "alcohol_intensity",
        "alcohol_type",
        "asbestos_exposure",
        "asbestos_exposure_type",
        "chemical_exposure_type",
        "cigarettes_per_day",
        "coal_dust_exposure",
        "environmental_tobacco_smoke_exposure",
        "exposure_duration",
        "exposure_duration_hrs_per_day",
        "exposure_duration_years",
        "exposure_id",
        "exposure_source",
        "exposure_type",
        "occupation_type",
        "pack_years_smoked",
        "parent_with_radiation_exposure",
        "radon_exposure",
        "respirable_crystalline_silica_exposure",
        "secondhand_smoke_as_child",
        "smoking_frequency",
        "time_between_waking_and_first_smoke",
        "tobacco_smoking_onset_year",
        "tobacco_smoking_quit_year",
        "tobacco_smoking_status",
        "type_of_smoke_exposure",
        "type_of_tobacco_used",
        "use_per_day",
        "years_smoked",
        # 2018-era exposure fields
        "bmi",
        "height",
        "weight",
    }
)
FAMILY_HISTORY_FIELDS: Final = frozenset(
    {
        "family_history_id",
        "relationship_age_at_diagnosis",
        "relationship_gender",
        "relationship_primary_diagnosis",
        "relationship_type",
        "relative_deceased",
        "relative_smoker",
        "relative_with_cancer_history",
        "relatives_with_cancer_history_count",
    }
)
V1_CASE_SUBMITTER_COLUMNS: Final = ("case_submitter_id", "submitter_id")
"""``case_submitter_id`` in the 2020s v1 layout, ``submitter_id`` in the 2018/19 one."""
CLINICAL_MARKERS: Final = frozenset(
    {"gender", "sex_at_birth", "vital_status", "primary_diagnosis", "tumor_stage", "ajcc_pathologic_stage"}
    | {"age_at_diagnosis", "days_to_last_follow_up", "race", "ethnicity"}
)
"""Fields one of which a v1 clinical TSV always has."""


def short_field_entity(field: str) -> str:
    """The entity a bare (v1) clinical column belongs to; anything unknown is a diagnosis field."""
    if field in CASE_FIELDS:
        return "cases"
    if field in DEMOGRAPHIC_FIELDS:
        return "demographic"
    if field in TREATMENT_FIELDS or field.startswith("treatment_"):
        return "treatments"
    if field in EXPOSURE_FIELDS:
        return "exposures"
    if field in FAMILY_HISTORY_FIELDS:
        return "family_histories"
    return "diagnoses"


def short_column_map(header: list[str]) -> ColumnMap:
    """Map the bare column names of a portal v1 TSV to ``(entity, field)``."""
    mapping: ColumnMap = {}
    for column in header:
        if column == "case_id":
            mapping[column] = ("cases", "case_id")
        elif column in V1_CASE_SUBMITTER_COLUMNS:
            mapping[column] = ("cases", "submitter_id")
        elif column == "project_id":
            mapping[column] = ("project", "project_id")
        else:
            mapping[column] = (short_field_entity(column), column)
    return mapping


def dotted_column_map(header: list[str]) -> tuple[ColumnMap, list[str]]:
    """Map the ``entity.field`` columns of a portal v2 TSV; also return the columns of unknown entities."""
    mapping: ColumnMap = {}
    unknown: list[str] = []
    for column in header:
        entity, dot, field = column.partition(".")
        if dot and entity in KNOWN_ENTITIES and field and "." not in field:
            mapping[column] = (entity, field)
        else:
            unknown.append(column)
    return mapping, unknown
