"""The MLCommons Croissant description of an export (``croissant.json``), built with ``mlcroissant`` itself so
that what we write is what its validator and record reader accept.

One FileObject per Parquet file (with its SHA-256), one RecordSet per table with every column typed; list
columns (linked ids, embedding vectors) are ``repeated`` fields. A Parquet dataset of many files (``--tiles``:
one per slide) adds a FileSet over its folder for its RecordSet; the HDF5 feature files are FileObjects with
their hashes. The cohort filter, member hash, releases and the survival/primary-diagnosis rules go into the
description and the responsible-AI fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import pyarrow as pa

CROISSANT_VERSION = "http://mlcommons.org/croissant/1.0"


def _data_type(t: pa.DataType) -> tuple[Any, bool]:
    import mlcroissant as mlc

    repeated = False
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
        repeated = True
        t = t.value_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return mlc.DataType.BOOL, repeated
    if pa.types.is_integer(t):
        return mlc.DataType.INTEGER, repeated
    if pa.types.is_float32(t):
        return mlc.DataType.FLOAT32, repeated
    if pa.types.is_floating(t):
        return mlc.DataType.FLOAT, repeated
    return mlc.DataType.TEXT, repeated


def _column_of(column: str, **where: str) -> Any:
    """The Croissant source of one column of a file object or file set (``where``: which one)."""
    import mlcroissant as mlc

    return mlc.Source(extract=mlc.Extract(column=column), **where)


def _record_set(rs_id: str, schema: pa.Schema, source: Callable[[str], Any]) -> Any:
    import mlcroissant as mlc

    fields = []
    for field in schema:
        data_type, repeated = _data_type(field.type)
        about = (field.metadata or {}).get(b"description", b"").decode() or None
        fields.append(
            mlc.Field(
                id=f"{rs_id}/{field.name}",
                name=field.name,
                description=about,
                data_types=[data_type],
                repeated=repeated,
                source=source(field.name),
            )
        )
    return mlc.RecordSet(id=rs_id, name=rs_id, fields=fields)


def build(
    *,
    name: str,
    description: str,
    files: Sequence[tuple[str, str, pa.Schema]],
    provenance: Mapping[str, Any],
    rules: Mapping[str, str],
    version: str,
    datasets: Sequence[tuple[str, pa.Schema, Sequence[tuple[str, str]]]] = (),
    attachments: Sequence[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """Croissant JSON-LD for ``files`` = (relative path, sha256, Arrow schema) of every Parquet table.

    ``datasets`` = (folder, schema, (path, sha256) of each file) are Parquet datasets of many files (the
    tile-level tables): every file is a FileObject with its hash, and one FileSet over the folder feeds the
    RecordSet. ``attachments`` = (path, sha256, media type) are files listed with their hash but read by
    other tools (the HDF5 feature files)."""
    import mlcroissant as mlc

    distribution = []
    record_sets = []
    for path, sha256, schema in files:
        distribution.append(
            mlc.FileObject(
                id=path,
                name=path,
                content_url=path,
                encoding_formats=["application/x-parquet"],
                sha256=sha256,
            )
        )
        rs_id = path.removesuffix(".parquet").replace("/", "_")
        record_sets.append(
            _record_set(
                rs_id,
                schema,
                partial(_column_of, file_object=path),
            )
        )
    for folder, schema, parts in datasets:
        distribution += [
            mlc.FileObject(
                id=path,
                name=path,
                content_url=path,
                encoding_formats=["application/x-parquet"],
                sha256=sha256,
            )
            for path, sha256 in parts
        ]
        distribution.append(
            mlc.FileSet(
                id=folder,
                name=folder,
                description=f"The Parquet dataset {folder}/: one file per slide, read as one table.",
                encoding_formats=["application/x-parquet"],
                includes=[f"{folder}/*.parquet"],
            )
        )
        rs_id = folder.removesuffix(".parquet").replace("/", "_")
        record_sets.append(
            _record_set(
                rs_id,
                schema,
                partial(_column_of, file_set=folder),
            )
        )
    distribution += [
        mlc.FileObject(id=path, name=path, content_url=path, encoding_formats=[media], sha256=sha256)
        for path, sha256, media in attachments
    ]
    metadata = mlc.Metadata(
        name=name,
        description=description + "\n\nProvenance: " + json.dumps(provenance, sort_keys=True, default=str),
        url="https://github.com/oncograph/oncograph",
        license=["https://gdc.cancer.gov/access-data/data-access-processes-and-tools"],
        version=version,
        cite_as=(
            "Source data: NCI Genomic Data Commons, Imaging Data Commons and Proteomic Data Commons; "
            "cite the projects of the included patients as each commons asks."
        ),
        date_published=str(provenance.get("cohort", {}).get("created_at", ""))[:10] or None,
        distribution=distribution,
        record_sets=record_sets,
        data_collection=(
            "Metadata harvested from the NCI CRDC (GDC API and portal exports, IDC index, PDC GraphQL) by "
            "oncograph; every value traces to a source document and data release (see the manifest)."
        ),
        data_collection_missing_data=(
            "Missing modalities are explicit boolean masks (has_*) in patients.parquet; missing clinical values "
            "are nulls. " + rules.get("survival", "")
        ),
        data_preprocessing_protocol=" ".join(rules.values()),
        data_limitations=(
            "Clinical values are as submitted to the commons; stages of different AJCC editions are not "
            "harmonised beyond spelling. Patients are linked across commons only by explicit evidence."
        ),
        data_biases="Cohort membership follows the filter below; projects differ in demographics and follow-up.",
        personal_sensitive_information=(
            "De-identified research data (dates as day offsets, ages over 89 obfuscated by the source). "
            "Controlled-access files appear only when the exporting principal holds a grant."
        ),
        data_use_cases="Training and evaluating multimodal oncology models on patient-level splits.",
    )
    out: dict[str, Any] = metadata.to_json()
    return out
