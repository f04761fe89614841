"""The one registry of cohort fields: GDC ``cases`` field paths plus oncograph's own cross-commons fields.

Each field says its type and where its values live as a *source*: a set of ``(patient id, value)`` rows
computed under an access :class:`~oncograph.access.Scope` (controlled files without a grant never appear).
A patient may have several values of a nested field (one per diagnosis, sample, file, series ...); the filter
compiler gives them GDC semantics (see :mod:`oncograph.cohorts.filters`).

Column names are the GDC dictionary's, so ``diagnoses.age_at_diagnosis`` reads ``diagnosis.age_at_diagnosis``.
Deviations, on purpose:

- ``demographic.sex_at_birth`` and ``demographic.gender`` both read the normalised ``sex`` (``sex_at_birth``
  in the July-2025 dictionary, ``gender`` before it), so a filter copied from either era of the portal works
  on data of either era. The raw columns are ``demographic.raw_sex_at_birth`` / ``demographic.raw_gender``.
- ``diagnoses.stage`` (ours) is ``ajcc_pathologic_stage`` or the pre-2019 ``tumor_stage`` in one spelling.
- Retired rows (no longer in the source's current release) are never values.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Table,
)

from oncograph.access import Scope
from oncograph.cohorts.modalities import MODALITIES, live_modalities, modalities_source
from oncograph.cohorts.values import (
    PATIENT,
    PROJECT,
    Source,
    child_col,
    child_col_uuid,
    embedding_col,
    file_col,
    idc_collection,
    idc_series_col,
    link_commons,
    live,
    patient_col,
    patient_col_text,
    program_name,
    project_array,
    project_col,
)
from oncograph.db.columns import ColumnType, column_type
from oncograph.db.models import (
    Demographic,
    Diagnosis,
    Exposure,
    FamilyHistory,
    FollowUp,
    PathologyDetail,
    Sample,
    Treatment,
)
from oncograph.db.models.base import LINEAGE_COLUMNS

#: Fields named ``*_id`` that code a category, not a person or a record.
_NOT_PERSONAL_IDS = frozenset({"project_id", "collection_id", "sample_type_id", "program_id"})

FieldType = Literal["string", "integer", "number", "boolean"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: FieldType
    description: str
    source: Callable[[Scope], Source]
    nested: bool = True
    """A patient may have several values (GDC semantics for lists apply)."""
    values: tuple[str, ...] = ()
    """Known values, for enumerations we define (``modalities``); GDC enumerations come from the data."""
    unit: str | None = None
    """The unit of a numeric field (``days``, ``years``, ``bytes``), from the GDC dictionary's conventions."""

    @property
    def identifier(self) -> bool:
        """Whether the field's values name single patients or records (case ids, barcodes, record ids, file
        names): filtering or faceting on it singles people out, which aggregate-only access may not."""
        tail = self.name.rsplit(".", 1)[-1]
        if tail in _NOT_PERSONAL_IDS:
            return False
        return tail in ("case_id", "submitter_id", "file_name", "md5sum") or tail.endswith("_id")

    @property
    def facet(self) -> Literal["terms", "histogram"]:
        return "histogram" if self.type in ("integer", "number") else "terms"

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field": self.name,
            "type": self.type,
            "facet": self.facet,
            "nested": self.nested,
            "description": self.description,
        }
        if self.values:
            out["values"] = list(self.values)
        if self.unit:
            out["unit"] = self.unit
        if self.identifier:
            out["identifier"] = True
        return out


def _fields() -> Iterable[Field]:
    yield Field("case_id", "string", "GDC case UUID.", patient_col_text("case_id"), nested=False)
    yield Field(
        "submitter_id", "string", "Case barcode (e.g. TCGA-BH-A0EA).", patient_col("submitter_id"), False
    )
    for col in ("primary_site", "disease_type", "consent_type", "lost_to_followup", "index_date", "state"):
        yield Field(col, "string", f"Case {col}.", patient_col(col), nested=False)
    yield Field(
        "days_to_consent",
        "integer",
        "Days from index date to consent.",
        patient_col("days_to_consent"),
        False,
    )
    yield Field(
        "project.project_id", "string", "GDC project id (e.g. TCGA-BRCA).", project_col("project_id"), False
    )
    yield Field("project.name", "string", "Project name.", project_col("name"), False)
    yield Field(
        "project.primary_site", "string", "Primary sites of the project.", project_array("primary_site")
    )
    yield Field(
        "project.disease_type", "string", "Disease types of the project.", project_array("disease_type")
    )
    yield Field("project.program.name", "string", "Program (TCGA, CPTAC, ...).", program_name, False)

    demo = Demographic
    yield Field(
        "demographic.sex_at_birth",
        "string",
        "Sex at birth (gender before 2025; normalised).",
        child_col(demo, "sex"),
        False,
    )
    yield Field(
        "demographic.gender",
        "string",
        "Same values as demographic.sex_at_birth.",
        child_col(demo, "sex"),
        False,
    )
    yield Field("demographic.sex", "string", "Normalised sex (oncograph).", child_col(demo, "sex"), False)
    yield Field(
        "demographic.raw_sex_at_birth",
        "string",
        "sex_at_birth as the source gave it.",
        child_col(demo, "sex_at_birth"),
        False,
    )
    yield Field(
        "demographic.raw_gender", "string", "gender as the source gave it.", child_col(demo, "gender"), False
    )
    for col in ("race", "ethnicity", "vital_status", "cause_of_death", "country_of_residence_at_enrollment"):
        yield Field(f"demographic.{col}", "string", f"Demographic {col}.", child_col(demo, col), False)
    for col in ("days_to_birth", "days_to_death", "age_at_index", "year_of_birth", "year_of_death"):
        yield Field(f"demographic.{col}", "integer", f"Demographic {col}.", child_col(demo, col), False)
    yield Field(
        "demographic.age_is_obfuscated",
        "boolean",
        "Age obfuscated (>89).",
        child_col(demo, "age_is_obfuscated"),
        False,
    )

    yield from _table_fields("diagnoses", Diagnosis, exclude={"patient_id"})
    yield from _table_fields("diagnoses.treatments", Treatment, exclude={"patient_id", "diagnosis_id"})
    yield from _table_fields(
        "diagnoses.pathology_details", PathologyDetail, exclude={"patient_id", "diagnosis_id"}
    )
    yield from _table_fields("follow_ups", FollowUp, exclude={"patient_id"})
    yield from _table_fields("exposures", Exposure, exclude={"patient_id"})
    yield from _table_fields("family_histories", FamilyHistory, exclude={"patient_id"})
    yield from _table_fields("samples", Sample, exclude={"patient_id"})
    for col in (
        "data_category",
        "data_type",
        "experimental_strategy",
        "data_format",
        "platform",
        "access",
        "workflow_type",
        "file_name",
        "slide_kind",
    ):
        yield Field(f"files.{col}", "string", f"File {col} (visible files only).", file_col(col))
    yield Field("files.file_size", "integer", "File size in bytes.", file_col("file_size"))
    yield Field(
        "modalities",
        "string",
        "Data modalities the patient has across GDC files, IDC imaging series, PDC proteomics and embeddings.",
        modalities_source,
        values=MODALITIES,
    )
    yield Field("idc.collection_id", "string", "IDC collection of a linked IDC patient.", idc_collection)
    yield Field(
        "idc.modality",
        "string",
        "DICOM Modality of a linked IDC series (CT, MR, SM, ...).",
        idc_series_col("modality"),
    )
    yield Field(
        "idc.body_part_examined", "string", "DICOM BodyPartExamined.", idc_series_col("body_part_examined")
    )
    yield Field("links.commons", "string", "Commons the patient is linked to (idc, pdc).", link_commons)
    yield Field(
        "embeddings.model", "string", "Embedding models the patient has vectors of.", embedding_col("model")
    )
    yield Field(
        "embeddings.modality",
        "string",
        "Modalities the patient has embeddings of.",
        embedding_col("modality"),
    )


_SKIP = {"id", "created_at", "updated_at", "key_derived", *LINEAGE_COLUMNS}


#: The filter type of a stored column type (:func:`oncograph.db.columns.column_type`); the rest are strings.
_FIELD_TYPE: Mapping[ColumnType, FieldType] = {
    "int": "integer",
    "bigint": "integer",
    "float": "number",
    "bool": "boolean",
}


def _table_fields(prefix: str, model: type[Any], *, exclude: set[str]) -> Iterable[Field]:
    model_table: Table = model.__table__
    for col in model_table.columns:
        if col.name in _SKIP or col.name in exclude:
            continue
        stored = column_type(col.type)
        kind = _FIELD_TYPE.get(stored, "string")
        build = child_col_uuid(model, col.name) if stored == "uuid" else child_col(model, col.name)
        yield Field(f"{prefix}.{col.name}", kind, f"{model.__tablename__}.{col.name}", build)


#: Units the GDC dictionary gives its numeric properties (beyond the ``days_to_*`` and ``year_of_*`` rules).
_UNITS = {
    "age_at_index": "years",
    "relationship_age_at_diagnosis": "years",
    "years_smoked": "years",
    "pack_years_smoked": "pack-years",
    "cigarettes_per_day": "cigarettes per day",
    "height": "cm",
    "weight": "kg",
    "bmi": "kg/m2",
    "tumor_largest_dimension_diameter": "cm",
    "file_size": "bytes",
}


def unit_of(name: str) -> str | None:
    """The unit of a numeric GDC property by its name: ``days_to_*`` and ``age_at_diagnosis`` (GDC counts it in
    days) are days, ``year_of_*`` calendar years, and the properties of :data:`_UNITS` what it says."""
    column = name.rsplit(".", 1)[-1]
    if column in _UNITS:
        return _UNITS[column]
    if column.startswith("days_to_") or column == "age_at_diagnosis":
        return "days"
    if column.startswith("year_of_"):
        return "calendar year"
    return None


_UNIT_NOTE = {
    "days": " In days (divide by 365.25 for years).",
    "years": " In years.",
    "calendar year": " A calendar year.",
}


def _with_unit(field: Field) -> Field:
    unit = field.unit or (unit_of(field.name) if field.type in ("integer", "number") else None)
    if unit is None:
        return field
    note = _UNIT_NOTE.get(unit, f" In {unit}.")
    text = field.description if field.description.endswith(".") else field.description + "."
    description = text if note.strip() in text else text + note
    return dataclasses.replace(field, unit=unit, description=description)


FIELDS: Mapping[str, Field] = {f.name: f for f in map(_with_unit, _fields())}


def get_field(name: str) -> Field | None:
    """The field of a GDC path (``cases.`` prefix allowed), or None."""
    key = name.strip()
    if key.startswith("cases."):
        key = key[len("cases.") :]
    return FIELDS.get(key)


def suggest(name: str) -> list[str]:
    return difflib.get_close_matches(name.removeprefix("cases."), list(FIELDS), n=3, cutoff=0.6)


__all__ = [
    "FIELDS",
    "MODALITIES",
    "PATIENT",
    "PROJECT",
    "Field",
    "FieldType",
    "Source",
    "get_field",
    "live",
    "live_modalities",
    "suggest",
]
