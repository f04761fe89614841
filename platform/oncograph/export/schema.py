"""Explicit Arrow schemas of every exported table (the contract with loaders and Croissant).

Categorical text (enumerations: project, sex, stage, data type ...) is dictionary-encoded; identifiers and
free text are plain strings. Every file carries ``oncograph.schema_version`` and ``oncograph.table`` in its
schema metadata; nothing time-dependent is written inside data files, so the same cohort version and options
give byte-identical Parquet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pyarrow as pa

from oncograph.cohorts.fields import MODALITIES

#: Bump on any change of a table's columns or their meaning.
EXPORT_SCHEMA_VERSION = "1.0"

CAT = pa.dictionary(pa.int32(), pa.string())
STR = pa.string()
I32 = pa.int32()
I64 = pa.int64()
F64 = pa.float64()
BOOL = pa.bool_()

#: Patient-level columns ``--split-by`` may stratify on.
STRATIFY_FIELDS = (
    "project_id",
    "program",
    "primary_site",
    "disease_type",
    "sex",
    "race",
    "ethnicity",
    "vital_status",
    "stage",
    "os_event",
)
DEFAULT_STRATIFY = ("project_id", "vital_status")

_PATIENT_BASE: list[tuple[str, pa.DataType, str]] = [
    ("case_id", STR, "GDC case UUID (the patient key of every table)."),
    ("submitter_id", STR, "GDC case barcode / submitter id."),
    ("project_id", CAT, "GDC project."),
    ("program", CAT, "GDC program."),
    ("primary_site", CAT, "Primary site."),
    ("disease_type", CAT, "Disease type."),
    ("idc_patient_ids", pa.list_(STR), "Linked IDC patients as collection_id/PatientID."),
    ("pdc_case_ids", pa.list_(STR), "Linked PDC case ids."),
    ("sex", CAT, "Sex at birth (gender before 2025), normalised."),
    ("race", CAT, "Race."),
    ("ethnicity", CAT, "Ethnicity."),
    ("vital_status", CAT, "Vital status."),
    ("age_at_index", I32, "Age at the index date, years."),
    ("days_to_birth", I32, "Days from the index date to birth (negative)."),
    ("days_to_death", I32, "Days from the index date to death."),
    ("primary_diagnosis", CAT, "Primary diagnosis of the primary-diagnosis record (see rules)."),
    ("stage", CAT, "Stage (AJCC pathologic, or pre-2019 tumor_stage, normalised)."),
    ("ajcc_pathologic_stage", CAT, "AJCC pathologic stage as given."),
    ("tumor_grade", CAT, "Tumor grade."),
    ("age_at_diagnosis_days", I32, "Age at diagnosis, days."),
    ("os_time_days", I32, "Overall-survival time, days (see rules); null when excluded."),
    ("os_event", BOOL, "Overall-survival event (death); null when excluded."),
    ("os_excluded_reason", CAT, "Why the patient has no survival target (null when it has one)."),
    ("split", CAT, "train / val / test (same as splits.parquet)."),
]

PRIMARY_DIAGNOSIS_RULE = (
    "The primary-diagnosis record is the patient's live diagnosis with diagnosis_is_primary_disease = true, "
    "else the earliest by days_to_diagnosis, then age_at_diagnosis, then diagnosis_id."
)


def embedding_column(model: str) -> str:
    """``has_emb_<model>`` with the model name made a safe column name."""
    return "has_emb_" + re.sub(r"[^0-9a-zA-Z]+", "_", model).strip("_").lower()


def patients_schema(embedding_models: Iterable[str]) -> pa.Schema:
    fields = [pa.field(n, t, metadata={"description": d}) for n, t, d in _PATIENT_BASE]
    fields += [
        pa.field(f"has_{m}", BOOL, nullable=False, metadata={"description": f"The patient has {m} data."})
        for m in MODALITIES
    ]
    fields += [
        pa.field(embedding_column(m), BOOL, nullable=False, metadata={"description": f"Embeddings of {m}."})
        for m in sorted(embedding_models)
    ]
    return with_version(pa.schema(fields), "patients")


def with_version(schema: pa.Schema, table: str) -> pa.Schema:
    return schema.with_metadata({"oncograph.schema_version": EXPORT_SCHEMA_VERSION, "oncograph.table": table})


def child_schema(table: str, columns: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    return with_version(pa.schema([pa.field("case_id", STR), *[pa.field(n, t) for n, t in columns]]), table)


FILES_SCHEMA = with_version(
    pa.schema(
        [
            pa.field("case_id", STR),
            pa.field("source", CAT, metadata={"description": "gdc, idc or pdc."}),
            pa.field(
                "file_id",
                STR,
                metadata={"description": "GDC file UUID, DICOM SeriesInstanceUID, PDC file id."},
            ),
            pa.field("file_name", STR),
            pa.field("data_category", CAT),
            pa.field("data_type", CAT),
            pa.field("experimental_strategy", CAT),
            pa.field("data_format", CAT),
            pa.field("access", CAT),
            pa.field("file_size", I64),
            pa.field("md5sum", STR),
            pa.field(
                "url", STR, metadata={"description": "Where to download it (GDC data endpoint, IDC S3)."}
            ),
            pa.field("modality", CAT, metadata={"description": "DICOM Modality (IDC series)."}),
            pa.field("collection_id", CAT),
            pa.field("study_id", STR, metadata={"description": "DICOM StudyInstanceUID or PDC study id."}),
            pa.field(
                "shared_by_patients",
                I32,
                metadata={"description": "Patients of the export sharing the file."},
            ),
        ]
    ),
    "files",
)

SPLITS_SCHEMA = with_version(
    pa.schema(
        [
            pa.field("case_id", STR),
            pa.field("split", CAT),
            pa.field("stratum", STR, metadata={"description": "Values of the stratification fields."}),
            pa.field("group", STR, metadata={"description": "Patients sharing a file are one group."}),
        ]
    ),
    "splits",
)


def embeddings_schema(dim: int) -> pa.Schema:
    return with_version(
        pa.schema(
            [
                pa.field("case_id", STR),
                pa.field("object_kind", CAT),
                pa.field("object_id", STR),
                pa.field("modality", CAT),
                pa.field("model", CAT),
                pa.field("model_version", CAT),
                pa.field("run_id", I64),
                pa.field("vector", pa.list_(pa.float32(), dim)),
            ]
        ),
        "embeddings",
    )


def tiles_schema(dim: int) -> pa.Schema:
    """``tiles/<model>/features.parquet/``: one row per tile of a slide embedding (``--tiles``), in the order of
    the slide's HDF5 file, so row ``tile`` of a slide is row ``tile`` of its ``features`` and ``coords``."""
    return with_version(
        pa.schema(
            [
                pa.field("case_id", STR),
                pa.field("object_kind", CAT),
                pa.field("object_id", STR),
                pa.field("model_version", CAT),
                pa.field("tile", I32, metadata={"description": "Row of the tile in the slide's HDF5 file."}),
                pa.field("x", I64, metadata={"description": "Level-0 left edge of the tile, pixels."}),
                pa.field("y", I64, metadata={"description": "Level-0 top edge of the tile, pixels."}),
                pa.field(
                    "features", pa.list_(pa.float32(), dim), metadata={"description": "Tile embedding."}
                ),
            ]
        ),
        "tiles",
    )


TILE_SLIDES_SCHEMA = with_version(
    pa.schema(
        [
            pa.field("case_id", STR),
            pa.field("object_kind", CAT),
            pa.field("object_id", STR),
            pa.field("model_version", CAT),
            pa.field("tiles", I32, metadata={"description": "Tiles of the slide (rows of its features)."}),
            pa.field("dim", I32, metadata={"description": "Floats per tile feature."}),
            pa.field("features_file", STR, metadata={"description": "The slide's HDF5 file in the export."}),
            pa.field("features_sha256", STR),
            pa.field("part", STR, metadata={"description": "The slide's file of the tile-level dataset."}),
            pa.field("patch_size_level0", I32, metadata={"description": "Tile edge at level 0, pixels."}),
            pa.field("level0_mpp", F64, metadata={"description": "Level-0 µm per pixel."}),
            pa.field("target_mpp", F64, metadata={"description": "µm per pixel the tiles were read at."}),
        ]
    ),
    "tile_slides",
)
"""``tiles/<model>/slides.parquet``: one row per slide whose tiles the export ships (the bag index)."""
