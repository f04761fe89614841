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

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Double,
    FromClause,
    Integer,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    column,
    func,
    lateral,
    literal,
    or_,
    select,
    table,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import UUID

from oncograph.access import Scope
from oncograph.access.policy import open_or_granted, visible_file
from oncograph.db.models import (
    DataFile,
    Demographic,
    Diagnosis,
    Embedding,
    Exposure,
    FamilyHistory,
    FilePatient,
    FollowUp,
    IdentityLink,
    PathologyDetail,
    Patient,
    Program,
    Project,
    Sample,
    Treatment,
)
from oncograph.db.models.imaging import IdcPatient, ImagingSeries

FieldType = Literal["string", "integer", "number", "boolean"]

PATIENT: Table = Patient.__table__  # type: ignore[assignment]
PROJECT: Table = Project.__table__  # type: ignore[assignment]
DATA_FILE: Table = DataFile.__table__  # type: ignore[assignment]
FILE_PATIENT: Table = FilePatient.__table__  # type: ignore[assignment]
IDENTITY_LINK: Table = IdentityLink.__table__  # type: ignore[assignment]
IDC_PATIENT: Table = IdcPatient.__table__  # type: ignore[assignment]
IMAGING_SERIES: Table = ImagingSeries.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Source:
    """Rows ``SELECT pid, value FROM froms WHERE where``: one per value a patient has."""

    pid: ColumnElement[Any]
    value: ColumnElement[Any]
    froms: tuple[FromClause, ...]
    where: tuple[ColumnElement[bool], ...] = ()

    def select(self, *conditions: ColumnElement[bool]) -> Select[Any]:
        return (
            select(self.pid.label("pid"), self.value.label("value"))
            .select_from(*self.froms)
            .where(*self.where, *conditions)
        )


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
        return out


def live(table: FromClause) -> ColumnElement[bool]:
    return table.c.retired_release_id.is_(None)


# -- source builders ----------------------------------------------------------------------------------------


def _patient_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        return Source(p.c.id, p.c[column], (p,), (live(p),))

    return build


def _project_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        pr = PROJECT.alias("fpr")
        return Source(p.c.id, pr.c[column], (p.join(pr, pr.c.id == p.c.project_id),), (live(p),))

    return build


def _project_array(column: str) -> Callable[[Scope], Source]:
    """An array column of the project, one value per element (``project.primary_site`` is a list)."""

    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        pr = PROJECT.alias("fpr")
        values = lateral(select(func.unnest(pr.c[column]).label("v"))).alias("fpv")
        froms = p.join(pr, pr.c.id == p.c.project_id).join(values, true())
        return Source(p.c.id, values.c.v, (froms,), (live(p),))

    return build


def _program_name(scope: Scope) -> Source:
    p = PATIENT.alias("fp")
    pr = PROJECT.alias("fpr")
    pg: FromClause = Program.__table__.alias("fpg")
    froms = p.join(pr, pr.c.id == p.c.project_id).join(pg, pg.c.id == pr.c.program_id)
    return Source(p.c.id, pg.c.name, (froms,), (live(p),))


def _child_col(model: type[Any], column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        t = model.__table__.alias(f"f_{model.__tablename__}")
        return Source(t.c.patient_id, t.c[column], (t,), (live(t),))

    return build


def _file_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        fp = FILE_PATIENT.alias("ffp")
        f = DATA_FILE.alias("ff")
        return Source(
            fp.c.patient_id,
            f.c[column],
            (fp.join(f, f.c.id == fp.c.file_id),),
            (visible_file(scope, f, fp.c.patient_id),),
        )

    return build


def idc_froms() -> tuple[FromClause, FromClause, FromClause]:
    link = IDENTITY_LINK.alias("fl")
    ip = IDC_PATIENT.alias("fip")
    froms = link.join(
        ip,
        and_(
            link.c.commons == "idc",
            ip.c.collection_id == link.c.namespace,
            ip.c.patient_id == link.c.external_id,
        ),
    )
    return link, ip, froms


def _idc_collection(scope: Scope) -> Source:
    link, ip, froms = idc_froms()
    return Source(link.c.patient_id, ip.c.collection_id, (froms,), (live(ip),))


def _idc_series_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        link, ip, froms = idc_froms()
        s = IMAGING_SERIES.alias("fs")
        return Source(
            link.c.patient_id,
            s.c[column],
            (froms.join(s, s.c.idc_patient_id == ip.c.id),),
            (live(ip), live(s)),
        )

    return build


def _link_commons(scope: Scope) -> Source:
    link = IDENTITY_LINK.alias("fl")
    return Source(link.c.patient_id, link.c.commons, (link,))


def _embedding_col(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        e: FromClause = Embedding.__table__.alias("fe")
        return Source(e.c.patient_id, e.c[column], (e,))

    return build


#: Modalities derived per patient: label -> how to recognise it.
FILE_MODALITIES: Mapping[str, Callable[[FromClause], ColumnElement[bool]]] = {
    "slide": lambda f: f.c.is_slide.is_(True),
    "rnaseq": lambda f: or_(
        f.c.experimental_strategy == "RNA-Seq", f.c.data_type == "Gene Expression Quantification"
    ),
    "mirnaseq": lambda f: f.c.experimental_strategy == "miRNA-Seq",
    "wxs": lambda f: f.c.experimental_strategy == "WXS",
    "wgs": lambda f: f.c.experimental_strategy == "WGS",
    "methylation": lambda f: f.c.experimental_strategy == "Methylation Array",
    "genotyping": lambda f: f.c.experimental_strategy == "Genotyping Array",
    "clinical_text": lambda f: f.c.data_type == "Pathology Report",
}
#: IDC series modalities (DICOM Modality) per label.
IMAGING_MODALITIES: Mapping[str, tuple[str, ...]] = {
    "ct": ("CT",),
    "mr": ("MR",),
    "pet": ("PT",),
    "xray": ("CR", "DX"),
    "mammography": ("MG",),
    "ultrasound": ("US",),
    "slide": ("SM",),
}
MODALITIES: tuple[str, ...] = tuple(
    sorted({*FILE_MODALITIES, *IMAGING_MODALITIES, "proteomics", "embedding"})
)


#: The materialised per-patient modalities (migration 0007; refreshed after every ingest's linking step).
PATIENT_MODALITY = table(
    "patient_modality",
    column("patient_id", BigInteger),
    column("modality", Text),
    column("via_open_data", Boolean),
)


def _modalities(scope: Scope) -> Source:
    """Modalities from ``patient_modality`` (visible without a grant when any source is not a controlled
    file), plus live embeddings."""
    pm = PATIENT_MODALITY.alias("fpm")
    conditions = [open_or_granted(scope, pm.c.via_open_data.is_(True), pm.c.patient_id)]
    e: FromClause = Embedding.__table__.alias("fme")
    sub = union_all(
        select(pm.c.patient_id.label("pid"), pm.c.modality.label("value")).where(*conditions),
        select(e.c.patient_id.label("pid"), literal("embedding").label("value")).distinct(),
    ).subquery("fm")
    return Source(sub.c.pid, sub.c.value, (sub,))


def live_modalities(scope: Scope) -> Source:
    """The same modalities computed from the graph tables now (what ``patient_modality`` materialises, plus
    embeddings): the definition the view must match, and a fallback for checks."""
    parts: list[Select[Any]] = []
    for label, recognise in FILE_MODALITIES.items():
        fp = FILE_PATIENT.alias()
        f = DATA_FILE.alias()
        parts.append(
            select(fp.c.patient_id.label("pid"), literal(label).label("value"))
            .select_from(fp.join(f, f.c.id == fp.c.file_id))
            .where(visible_file(scope, f, fp.c.patient_id), recognise(f))
            .distinct()
        )
    series_labels = [(dicom, label) for label, dicoms in IMAGING_MODALITIES.items() for dicom in dicoms]
    link, ip, froms = idc_froms()
    s = IMAGING_SERIES.alias()
    parts.append(
        select(
            link.c.patient_id.label("pid"),
            case(*[(s.c.modality == dicom, label) for dicom, label in series_labels]).label("value"),
        )
        .select_from(froms.join(s, s.c.idc_patient_id == ip.c.id))
        .where(live(ip), live(s), s.c.modality.in_([d for d, _ in series_labels]))
        .distinct()
    )
    pdc = IDENTITY_LINK.alias()
    parts.append(
        select(pdc.c.patient_id.label("pid"), literal("proteomics").label("value"))
        .where(pdc.c.commons == "pdc")
        .distinct()
    )
    e: FromClause = Embedding.__table__.alias()
    parts.append(select(e.c.patient_id.label("pid"), literal("embedding").label("value")).distinct())
    sub = union_all(*parts).subquery("fm")
    return Source(sub.c.pid, sub.c.value, (sub,))


# -- the registry -------------------------------------------------------------------------------------------


def _fields() -> Iterable[Field]:
    yield Field("case_id", "string", "GDC case UUID.", _patient_col_text("case_id"), nested=False)
    yield Field(
        "submitter_id", "string", "Case barcode (e.g. TCGA-BH-A0EA).", _patient_col("submitter_id"), False
    )
    for col in ("primary_site", "disease_type", "consent_type", "lost_to_followup", "index_date", "state"):
        yield Field(col, "string", f"Case {col}.", _patient_col(col), nested=False)
    yield Field(
        "days_to_consent",
        "integer",
        "Days from index date to consent.",
        _patient_col("days_to_consent"),
        False,
    )
    yield Field(
        "project.project_id", "string", "GDC project id (e.g. TCGA-BRCA).", _project_col("project_id"), False
    )
    yield Field("project.name", "string", "Project name.", _project_col("name"), False)
    yield Field(
        "project.primary_site", "string", "Primary sites of the project.", _project_array("primary_site")
    )
    yield Field(
        "project.disease_type", "string", "Disease types of the project.", _project_array("disease_type")
    )
    yield Field("project.program.name", "string", "Program (TCGA, CPTAC, ...).", _program_name, False)

    demo = Demographic
    yield Field(
        "demographic.sex_at_birth",
        "string",
        "Sex at birth (gender before 2025; normalised).",
        _child_col(demo, "sex"),
        False,
    )
    yield Field(
        "demographic.gender",
        "string",
        "Same values as demographic.sex_at_birth.",
        _child_col(demo, "sex"),
        False,
    )
    yield Field("demographic.sex", "string", "Normalised sex (oncograph).", _child_col(demo, "sex"), False)
    yield Field(
        "demographic.raw_sex_at_birth",
        "string",
        "sex_at_birth as the source gave it.",
        _child_col(demo, "sex_at_birth"),
        False,
    )
    yield Field(
        "demographic.raw_gender", "string", "gender as the source gave it.", _child_col(demo, "gender"), False
    )
    for col in ("race", "ethnicity", "vital_status", "cause_of_death", "country_of_residence_at_enrollment"):
        yield Field(f"demographic.{col}", "string", f"Demographic {col}.", _child_col(demo, col), False)
    for col in ("days_to_birth", "days_to_death", "age_at_index", "year_of_birth", "year_of_death"):
        yield Field(f"demographic.{col}", "integer", f"Demographic {col}.", _child_col(demo, col), False)
    yield Field(
        "demographic.age_is_obfuscated",
        "boolean",
        "Age obfuscated (>89).",
        _child_col(demo, "age_is_obfuscated"),
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
        yield Field(f"files.{col}", "string", f"File {col} (visible files only).", _file_col(col))
    yield Field("files.file_size", "integer", "File size in bytes.", _file_col("file_size"))
    yield Field(
        "modalities",
        "string",
        "Data modalities the patient has across GDC files, IDC imaging series, PDC proteomics and embeddings.",
        _modalities,
        values=MODALITIES,
    )
    yield Field("idc.collection_id", "string", "IDC collection of a linked IDC patient.", _idc_collection)
    yield Field(
        "idc.modality",
        "string",
        "DICOM Modality of a linked IDC series (CT, MR, SM, ...).",
        _idc_series_col("modality"),
    )
    yield Field(
        "idc.body_part_examined", "string", "DICOM BodyPartExamined.", _idc_series_col("body_part_examined")
    )
    yield Field("links.commons", "string", "Commons the patient is linked to (idc, pdc).", _link_commons)
    yield Field(
        "embeddings.model", "string", "Embedding models the patient has vectors of.", _embedding_col("model")
    )
    yield Field(
        "embeddings.modality",
        "string",
        "Modalities the patient has embeddings of.",
        _embedding_col("modality"),
    )


def _patient_col_text(column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        p = PATIENT.alias("fp")
        return Source(p.c.id, cast(p.c[column], Text), (p,), (live(p),))

    return build


_SKIP = {
    "id",
    "source_document_id",
    "first_seen_release_id",
    "last_seen_release_id",
    "retired_release_id",
    "created_at",
    "updated_at",
    "key_derived",
}


def _table_fields(prefix: str, model: type[Any], *, exclude: set[str]) -> Iterable[Field]:
    model_table: Table = model.__table__
    for col in model_table.columns:
        if col.name in _SKIP or col.name in exclude:
            continue
        kind: FieldType
        if isinstance(col.type, Boolean):
            kind = "boolean"
        elif isinstance(col.type, Integer | BigInteger):
            kind = "integer"
        elif isinstance(col.type, Double):
            kind = "number"
        else:
            kind = "string"
        build = (
            _child_col_uuid(model, col.name) if isinstance(col.type, UUID) else _child_col(model, col.name)
        )
        yield Field(f"{prefix}.{col.name}", kind, f"{model.__tablename__}.{col.name}", build)


def _child_col_uuid(model: type[Any], column: str) -> Callable[[Scope], Source]:
    def build(scope: Scope) -> Source:
        t = model.__table__.alias(f"f_{model.__tablename__}")
        return Source(t.c.patient_id, cast(t.c[column], Text), (t,), (live(t),))

    return build


FIELDS: Mapping[str, Field] = {f.name: f for f in _fields()}


def get_field(name: str) -> Field | None:
    """The field of a GDC path (``cases.`` prefix allowed), or None."""
    key = name.strip()
    if key.startswith("cases."):
        key = key[len("cases.") :]
    return FIELDS.get(key)


def suggest(name: str) -> list[str]:
    return difflib.get_close_matches(name.removeprefix("cases."), list(FIELDS), n=3, cutoff=0.6)
