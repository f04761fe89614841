"""The portal file layouts oncograph knows, recognised from a file's content (never its name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args

import orjson

from oncograph.domain.problems import Problem
from oncograph.domain.records import EntityType
from oncograph.errors import InputFormatError, SourceError
from oncograph.sources.gdc.portal import fields
from oncograph.sources.gdc.portal.tsv import first_line_columns

PortalFormat = Literal[
    "clinical_tsv_v2",
    "exposure_tsv",
    "follow_up_tsv",
    "pathology_detail_tsv",
    "family_history_tsv",
    "clinical_tsv_v1",
    "clinical_tsv_v1_2018",
    "biotab_clinical",
    "sample_sheet",
    "gdc_manifest",
    "portal_clinical_json",
    "portal_biospecimen_json",
    "portal_cases_table_json",
    "portal_files_table_json",
    "portal_file_metadata_json",
    "api_hits_json",
    "empty",
]
"""A portal export layout. ``empty`` is a file with no content at all (or an empty JSON list)."""

SUPPORTED_FORMATS: Final[tuple[PortalFormat, ...]] = get_args(PortalFormat)

SOURCE_OF: Final[dict[PortalFormat, str]] = {
    "clinical_tsv_v2": "gdc_portal_tsv",
    "exposure_tsv": "gdc_portal_tsv",
    "follow_up_tsv": "gdc_portal_tsv",
    "pathology_detail_tsv": "gdc_portal_tsv",
    "family_history_tsv": "gdc_portal_tsv",
    "clinical_tsv_v1": "gdc_portal_tsv",
    "clinical_tsv_v1_2018": "gdc_portal_tsv",
    "biotab_clinical": "gdc_biotab",
    "sample_sheet": "gdc_sample_sheet",
    "gdc_manifest": "gdc_manifest",
    "portal_clinical_json": "gdc_portal_json",
    "portal_biospecimen_json": "gdc_portal_json",
    "portal_cases_table_json": "gdc_portal_json",
    "portal_files_table_json": "gdc_portal_json",
    "portal_file_metadata_json": "gdc_portal_json",
    "api_hits_json": "gdc_portal_json",
    "empty": "gdc_portal_tsv",
}
"""The :attr:`SourceRecord.source` each format's records carry."""

_FILE_KEYS: Final = frozenset({"file_id", "file_name", "md5sum", "data_format", "file_size", "data_category"})
_CLINICAL_KEYS: Final = frozenset({"demographic", "diagnoses", "exposures", "follow_ups", "family_histories"})
_CASE_KEYS: Final = _CLINICAL_KEYS | {"case_id", "submitter_id", "samples", "summary", "project"}
_PROJECT_KEYS: Final = frozenset({"program", "name", "summary", "dbgap_accession_number", "released"})
_COMPANIONS: Final[tuple[tuple[str, PortalFormat], ...]] = (
    ("pathology_details", "pathology_detail_tsv"),
    ("follow_ups", "follow_up_tsv"),
    ("exposures", "exposure_tsv"),
    ("family_histories", "family_history_tsv"),
)
"""The v2 companion TSVs, by the child entity whose columns they carry."""
_BINARY_MAGIC: Final = (b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ")


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What :func:`sniff` learnt about a file, so that it is read only once."""

    format: PortalFormat
    text: str | None = None
    """The decoded text of a TSV file."""
    items: list[Any] | None = None
    """The JSON elements (list entries, or the hits of an API response)."""
    entity_type: EntityType = "case"
    problems: list[Problem] = field(default_factory=list)


def read_bytes(path: Path) -> bytes:
    """Read a file, turning OS errors into a :class:`SourceError` that names the file."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc


class PortalFileError(InputFormatError):
    """A file that is not a supported portal export (unknown layout, invalid JSON, binary)."""

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        """Why, in a few words (no path), for a list of skipped files."""


def _unknown(path: Path, seen: str) -> PortalFileError:
    return PortalFileError(
        f"{path}: unknown GDC portal file layout; {seen}. Supported formats: {', '.join(SUPPORTED_FORMATS)}",
        reason=f"unknown layout: {seen}",
        hint="download the file from the GDC Data Portal (clinical/biospecimen TSV or JSON, sample sheet, "
        "manifest, metadata JSON, BCR Biotab) or save a GDC API /cases or /files response",
    )


def _shown(names: list[str], limit: int = 8) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(repr(name) for name in names[:limit]) + more


def classify_header(columns: list[str]) -> PortalFormat | None:
    """The TSV format a header row belongs to, or None when it matches no known layout."""
    names = set(columns)
    if {"bcr_patient_uuid", "bcr_patient_barcode"} <= names:
        other_uuids = [c for c in columns if c.startswith("bcr_") and c.endswith("_uuid")]
        return "biotab_clinical" if other_uuids == ["bcr_patient_uuid"] else None
    if {"id", "filename", "md5", "size"} <= names:
        return "gdc_manifest"
    if {"File ID", "File Name"} <= names:
        return "sample_sheet"
    if names & {"cases.case_id", "cases.submitter_id"}:
        entities = {c.partition(".")[0] for c in columns if "." in c}
        for entity, fmt in _COMPANIONS:
            if entity in entities:
                return fmt
        return "clinical_tsv_v2" if entities & {"demographic", "diagnoses", "treatments"} else None
    if "case_id" in names and names & set(fields.V1_CASE_SUBMITTER_COLUMNS):
        if names & fields.CLINICAL_MARKERS:
            return "clinical_tsv_v1" if "case_submitter_id" in names else "clinical_tsv_v1_2018"
        rest = [c for c in columns if c not in {"case_id", "project_id", *fields.V1_CASE_SUBMITTER_COLUMNS}]
        if rest and all(c in fields.EXPOSURE_FIELDS or c == "occupation_duration_years" for c in rest):
            return "exposure_tsv"
        if rest and all(c in fields.FAMILY_HISTORY_FIELDS for c in rest):
            return "family_history_tsv"
    return None


def classify_keys(keys: set[str], api: bool) -> tuple[PortalFormat, EntityType] | None:
    """The JSON format (and entity type) of records having these top-level keys."""
    if "annotation_id" in keys:
        return None
    if keys & _FILE_KEYS:
        if api or "id" in keys:
            return "api_hits_json", "file"
        if "associated_entities" in keys:
            return "portal_file_metadata_json", "file"
        return "portal_files_table_json", "file"
    if "project_id" in keys and not keys & {"case_id", "samples", *_CLINICAL_KEYS}:
        if api or "id" in keys or keys & _PROJECT_KEYS:
            return "api_hits_json", "project"
        return None
    if keys & _CASE_KEYS:
        if api or "id" in keys:
            return "api_hits_json", "case"
        if "summary" in keys:
            return "portal_cases_table_json", "case"
        if keys & _CLINICAL_KEYS:
            return "portal_clinical_json", "case"
        if "samples" in keys:
            return "portal_biospecimen_json", "case"
        return "portal_cases_table_json", "case"
    if api and "id" in keys:
        return "api_hits_json", "case"
    return None


def json_items(value: Any) -> tuple[list[Any], bool] | None:
    """The entity list inside a parsed JSON document and whether it is a GDC API response.

    A portal export is a top-level list; an API response is ``{"data": {"hits": [...]}}`` or, for a single
    entity, ``{"data": {...}}``.
    """
    if isinstance(value, list):
        return value, False
    if isinstance(value, dict) and isinstance(value.get("data"), dict):
        data = value["data"]
        if isinstance(data.get("hits"), list):
            return data["hits"], True
        return [data], True
    return None


def _sniff_json(path: Path, data: bytes) -> Sniffed:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})"
        raise PortalFileError(
            f"{path}: not valid JSON: {where}",
            reason=f"not valid JSON: {where}",
            hint="the download may be incomplete; download the file again",
        ) from exc
    found = json_items(value)
    if found is None:
        top = list(value) if isinstance(value, dict) else []
        raise _unknown(path, f"a top-level JSON {type(value).__name__} with keys {_shown(top)}")
    items, api = found
    if not items:
        return Sniffed(format="api_hits_json" if api else "empty", items=[])
    seen_keys: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            seen_keys.update(item)
    kind = classify_keys(seen_keys, api)
    if kind is None:
        first = next((list(item) for item in items if isinstance(item, dict)), [])
        seen = f"first record keys: {_shown(first)}" if first else "a JSON list without any object"
        raise _unknown(path, seen)
    return Sniffed(format=kind[0], items=items, entity_type=kind[1])


def decode(path: Path, data: bytes) -> tuple[str, list[Problem]]:
    """Decode UTF-8 (with or without BOM); fall back to Latin-1 with a file-level problem."""
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        note = Problem(path.name, f"not UTF-8 (bad byte at offset {exc.start}); read as Latin-1")
        return data.decode("latin-1"), [note]


def _looks_binary(data: bytes) -> bool:
    """NULs in the header line or in many places of the first 4 KiB: binary (or UTF-16), not a portal TSV.

    A single NUL in a data row is a bad cell (that row is quarantined), not a reason to refuse the file.
    """
    head = data[:4096]
    first_line = data[: data.find(b"\n")] if b"\n" in data[:65536] else data[:65536]
    return b"\x00" in first_line or head.count(b"\x00") > len(head) // 100


def sniff(path: Path, data: bytes) -> Sniffed:
    """Recognise a file's format from its content.

    Raises:
        InputFormatError: the content matches no supported layout, or is not valid JSON.
    """
    if data.startswith(_BINARY_MAGIC) or _looks_binary(data):
        raise _unknown(path, "binary content (a .gz/.tar/.zip archive?); extract it first")
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if not start:
        return Sniffed(format="empty", text="")
    if start in (b"[", b"{"):
        return _sniff_json(path, data)
    text, problems = decode(path, data)
    columns = first_line_columns(text)
    fmt = classify_header(columns)
    if fmt is None:
        raise _unknown(path, f"first header columns: {_shown(columns)}")
    return Sniffed(format=fmt, text=text, problems=problems)


def detect_format(path: Path) -> PortalFormat:
    """Tell which GDC portal export a file is, from its content.

    Args:
        path: the downloaded file.

    Returns:
        The format; ``empty`` for a file without content. A header-only TSV gets its real format.

    Raises:
        InputFormatError: the layout is unknown (the message names the file, the header columns or JSON keys
            seen, and the supported formats) or the JSON is invalid.
        SourceError: the file cannot be read.
    """
    return sniff(path, read_bytes(path)).format
