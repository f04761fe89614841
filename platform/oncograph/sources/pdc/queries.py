"""The GraphQL documents the PDC client sends: which fields of which types, built against what the server has.

A field list is a tuple of names and ``(field, type, fields)`` triples for nested objects. Before querying,
the client asks the server which fields its types have (introspection, see :data:`TYPE_FIELDS_QUERY`) and
selects only those, so the same client reads today's PDC and the 2019-era schema of the recordings (whose
``Case`` still has ``gdc_case_id``). Without introspection the :data:`LEGACY_FIELDS` are left out.

Argument names are fixed here; every value travels as a GraphQL variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final, Literal, TypeAlias

FieldSpec: TypeAlias = "str | tuple[str, str, Fields]"
Fields: TypeAlias = tuple[FieldSpec, ...]
TypeFields = Mapping[str, frozenset[str]]

StudyKey = Literal["pdc_study_id", "study_submitter_id"]

PDC_STUDY_ID: Final = re.compile(r"^PDC\d{6}$")

STUDY_FIELDS: Final[Fields] = (
    "pdc_study_id", "study_id", "study_submitter_id", "study_name", "study_shortname", "submitter_id_name",
    "study_version", "is_latest_version", "program_name", "program_id", "project_name", "project_id",
    "project_submitter_id", "disease_type", "primary_site", "analytical_fraction", "experiment_type",
    "acquisition_type", "cases_count", "aliquots_count", "embargo_date",
    ("filesCount", "File", ("file_type", "data_category", "files_count")),
)  # fmt: skip

_CASE_CORE: Final[Fields] = (
    "case_id", "case_submitter_id", "project_submitter_id", "project_id", "disease_type", "primary_site",
    "tissue_source_site_code", "consent_type", "case_is_ref", "index_date", "gdc_case_id",
    ("externalReferences", "EntityReference", (
        "reference_id", "reference_type", "reference_entity_type", "reference_resource_name",
        "reference_resource_shortname", "external_reference_id", "reference_entity_alias",
        "reference_entity_location",
    )),
    ("demographics", "Demographic", (
        "demographic_id", "demographic_submitter_id", "gender", "sex", "race", "ethnicity", "vital_status",
        "days_to_birth", "days_to_death", "age_at_index",
    )),
)  # fmt: skip

CASE_FIELDS: Final[Fields] = (
    *_CASE_CORE,
    ("samples", "Sample", (
        "sample_id", "sample_submitter_id", "gdc_sample_id", "gdc_project_id", "sample_type", "tissue_type",
        ("aliquots", "Aliquot", ("aliquot_id", "aliquot_submitter_id", "analyte_type", "status")),
    )),
)  # fmt: skip
"""A case with its demographics (a list in PDC), external references, samples and their aliquots."""

FILE_FIELDS: Final[Fields] = (
    "file_id", "file_name", "file_submitter_id", "file_type", "file_format", "data_category", "md5sum",
    "file_size", "file_location", "study_id", "pdc_study_id", "study_submitter_id", "study_name",
)  # fmt: skip

LEGACY_FIELDS: Final = frozenset({("Case", "gdc_case_id")})
"""Fields of older PDC schemas, asked for only when the server says it has them."""

INTROSPECTED_TYPES: Final = (
    "Study", "File", "Case", "EntityReference", "Demographic", "Sample", "Aliquot", "FilePerStudy",
)  # fmt: skip

TYPE_FIELDS_QUERY: Final = (
    "query PdcTypeFields { "
    + " ".join(f'{t}: __type(name: "{t}") {{ fields {{ name }} }}' for t in INTROSPECTED_TYPES)
    + " }"
)


def study_key(selector: str) -> StudyKey:
    """``pdc_study_id`` for ``PDC000111``-style ids, else ``study_submitter_id`` (``S016-1``)."""
    return "pdc_study_id" if PDC_STUDY_ID.match(selector) else "study_submitter_id"


def selection(type_name: str, fields: Fields, available: TypeFields | None) -> str:
    """``{ a b c { x y } }`` for the fields of ``type_name`` that the server has (all but legacy ones when
    ``available`` is unknown); a nested object with nothing left is dropped."""
    have = available.get(type_name) if available is not None else None
    parts: list[str] = []
    for spec in fields:
        name = spec if isinstance(spec, str) else spec[0]
        if have is not None and name not in have:
            continue
        if have is None and (type_name, name) in LEGACY_FIELDS:
            continue
        if isinstance(spec, str):
            parts.append(name)
            continue
        inner = selection(spec[1], spec[2], available)
        if inner != "{ }":
            parts.append(f"{name} {inner}")
    return "{ " + " ".join(parts) + " }"


def operation(
    name: str, field: str, args: Mapping[str, tuple[str, object]], body: str, *, accept_dua: bool = True
) -> tuple[str, dict[str, object]]:
    """A named query calling ``field`` with ``args`` (``{arg: (GraphQL type, value)}``, None values left out).

    Returns the document and its variables.
    """
    present = {k: v for k, v in args.items() if v[1] is not None}
    declared = ", ".join(f"${k}: {t}" for k, (t, _) in present.items())
    passed = [f"{k}: ${k}" for k in present]
    if accept_dua:
        passed.append("acceptDUA: true")
    header = f"query {name}({declared})" if declared else f"query {name}"
    arg_text = f"({', '.join(passed)})" if passed else ""
    return f"{header} {{ {field}{arg_text} {body} }}", {k: v for k, (_, v) in present.items()}


def aliased_studies(ids: Sequence[str], available: TypeFields | None) -> tuple[str, dict[str, object]]:
    """One request for several studies: ``s0: study(pdc_study_id: $id0, acceptDUA: true) {...} s1: ...``."""
    body = selection("Study", STUDY_FIELDS, available)
    declared = ", ".join(f"$id{i}: String" for i in range(len(ids)))
    calls = " ".join(f"s{i}: study(pdc_study_id: $id{i}, acceptDUA: true) {body}" for i in range(len(ids)))
    return f"query PdcStudies({declared}) {{ {calls} }}", {f"id{i}": sid for i, sid in enumerate(ids)}
