"""The index columns the graph reads, their types, and how a column of raw values becomes typed.

A value that does not convert (a date that is not ``YYYY-MM-DD``, a series number that is not an integer, a
``crdc_series_uuid`` that is not a UUID) becomes NULL and is counted in :class:`Findings`; a NUL character,
which PostgreSQL text cannot hold, becomes U+FFFD and is counted too. Nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.compute as pc

from oncograph.sources.idc import pgcopy
from oncograph.sources.idc.index_file import IndexFileError

#: ``key``: a required identifier; ``uuid``: text that must be a UUID.
FieldKind = Literal["key", "text", "uuid", "date", "int4", "int8", "float8"]


@dataclass(frozen=True, slots=True)
class IndexField:
    """An index column (``column``) and the graph's name for it (``name``)."""

    column: str
    name: str
    kind: FieldKind

    @property
    def wire(self) -> pgcopy.WireType:
        if self.kind == "key":
            return "text"
        return self.kind


#: The index columns the graph reads. The row hash covers exactly these values, in this order.
SERIES_FIELDS: Final = (
    IndexField("collection_id", "collection_id", "key"),
    IndexField("PatientID", "patient_id", "key"),
    IndexField("StudyInstanceUID", "study_instance_uid", "key"),
    IndexField("SeriesInstanceUID", "series_instance_uid", "key"),
    IndexField("analysis_result_id", "analysis_result_id", "text"),
    IndexField("source_DOI", "source_doi", "text"),
    IndexField("PatientAge", "patient_age", "text"),
    IndexField("PatientSex", "patient_sex", "text"),
    IndexField("StudyDate", "study_date", "date"),
    IndexField("StudyDescription", "study_description", "text"),
    IndexField("BodyPartExamined", "body_part_examined", "text"),
    IndexField("Modality", "modality", "text"),
    IndexField("SOPClassUID", "sop_class_uid", "text"),
    IndexField("sop_class_name", "sop_class_name", "text"),
    IndexField("TransferSyntaxUID", "transfer_syntax_uid", "text"),
    IndexField("Manufacturer", "manufacturer", "text"),
    IndexField("ManufacturerModelName", "manufacturer_model_name", "text"),
    IndexField("SeriesDate", "series_date", "date"),
    IndexField("SeriesDescription", "series_description", "text"),
    IndexField("SeriesNumber", "series_number", "int8"),
    IndexField("instanceCount", "instance_count", "int4"),
    IndexField("license_short_name", "license_short_name", "text"),
    IndexField("series_init_idc_version", "series_init_idc_version", "int4"),
    IndexField("series_revised_idc_version", "series_revised_idc_version", "int4"),
    IndexField("crdc_series_uuid", "crdc_series_uuid", "uuid"),
    IndexField("series_aws_url", "series_aws_url", "text"),
    IndexField("series_size_MB", "series_size_mb", "float8"),
)
BY_NAME: Final = {f.name: f for f in SERIES_FIELDS}
#: What a group (one study, collection and patient) has: its key, then the study-level values.
GROUP_FIELDS: Final = (
    "study_instance_uid",
    "collection_id",
    "patient_id",
    "study_date",
    "study_description",
    "patient_age",
    "patient_sex",
)
#: Per row besides the fields: its number in the file, the hash of its values, its group's number.
ROW_COLUMNS: Final[tuple[tuple[str, pgcopy.WireType], ...]] = (
    ("index_row", "int4"),
    ("row_hash", "bytea"),
    ("group_id", "int4"),
)
_ARROW_TYPE: Final[dict[str, Any]] = {
    "key": pa.large_string(),
    "text": pa.large_string(),
    "uuid": pa.large_string(),
    "date": pa.date32(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float8": pa.float64(),
}
_INTEGER: Final = r"^\s*[+-]?\d{1,18}\s*$"
_UUID: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_EXAMPLES: Final = 3


@dataclass(slots=True)
class Findings:
    """Values stored as NULL or altered, per (column, problem): a count and a few examples."""

    counts: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def add(self, column: str, problem: str, count: int, examples: list[Any]) -> None:
        seen = self.counts.setdefault((column, problem), [0, []])
        seen[0] += count
        seen[1] = (seen[1] + examples)[:_EXAMPLES]

    def merge(self, other: Findings) -> None:
        for (column, problem), (count, examples) in other.counts.items():
            self.add(column, problem, count, examples)

    def messages(self, file: str) -> list[str]:
        out = []
        for (column, problem), (count, examples) in sorted(self.counts.items()):
            if problem == "nul":
                out.append(
                    f"{file}: {count} {column} values hold NUL characters, which PostgreSQL text cannot "
                    "store: stored with U+FFFD in their place"
                )
            else:
                out.append(
                    f"{file}: {count} {column} values are not {problem} (e.g. {examples}): stored as NULL"
                )
        return out


def typed_column(values: Any, f: IndexField, findings: Findings, *, nul: bool, file: str) -> Any:
    """``values`` (an Arrow array of the raw column) in the graph's type.

    Args:
        values: the raw column.
        f: the field.
        findings: where values that became NULL or were altered are counted.
        nul: the column may hold NUL characters (a string column whose buffer holds a zero byte).
        file: the file's name, for messages.

    Raises:
        IndexFileError: the column cannot be converted at all (e.g. numbers where dates belong).
    """
    target = _ARROW_TYPE[f.kind]
    if f.kind in ("key", "text", "uuid"):
        values = values.cast(pa.large_string())
        if nul and (count := pc.sum(pc.match_substring(values, "\x00")).as_py()):
            findings.add(f.column, "nul", count, [])
            values = pc.replace_substring(values, "\x00", "\ufffd")
        if f.kind == "uuid":
            values = _keep_matching(values, _UUID, f, findings, "a UUID")
        return values
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        if f.kind == "date":
            parsed = pc.strptime(values, format="%Y-%m-%d", unit="s", error_is_null=True).cast(target)
            _count_lost(values, parsed, f, findings, "a YYYY-MM-DD date")
            return parsed
        if f.kind in ("int4", "int8"):
            values = pc.utf8_trim_whitespace(_keep_matching(values, _INTEGER, f, findings, "an integer"))
    try:
        return values.cast(target)
    except pa.ArrowInvalid as exc:
        raise IndexFileError(f"{file}: column {f.column} does not convert to {f.kind}: {exc}") from exc


def null_column(f: IndexField, length: int) -> Any:
    """The column of a field the file does not have."""
    return pa.nulls(length, _ARROW_TYPE[f.kind])


def _keep_matching(values: Any, pattern: str, f: IndexField, findings: Findings, what: str) -> Any:
    ok = pc.match_substring_regex(values, pattern)
    kept = pc.if_else(ok, values, pa.scalar(None, values.type))
    _count_lost(values, kept, f, findings, what)
    return kept


def _count_lost(before: Any, after: Any, f: IndexField, findings: Findings, what: str) -> None:
    lost = pc.and_(pc.is_valid(before), pc.is_null(after))
    count = pc.sum(lost).as_py() or 0
    if count:
        findings.add(f.column, what, count, before.filter(lost).slice(0, _EXAMPLES).to_pylist())
