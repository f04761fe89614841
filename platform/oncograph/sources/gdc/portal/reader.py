"""Read any supported portal file into source records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from oncograph.domain.problems import Problem
from oncograph.domain.records import SourceRecord
from oncograph.sources.gdc.portal.biotab import biotab_records
from oncograph.sources.gdc.portal.clinical_tsv import case_records
from oncograph.sources.gdc.portal.formats import (
    SOURCE_OF,
    PortalFormat,
    Sniffed,
    json_items,
    read_bytes,
    sniff,
)
from oncograph.sources.gdc.portal.portal_json import json_records
from oncograph.sources.gdc.portal.sheets import manifest_records, sample_sheet_records
from oncograph.sources.gdc.portal.tsv import scan_table

_CLINICAL_TSV: Final[dict[PortalFormat, str | None]] = {
    "clinical_tsv_v2": None,
    "clinical_tsv_v1": None,
    "clinical_tsv_v1_2018": None,
    "follow_up_tsv": None,
    "pathology_detail_tsv": None,
    "exposure_tsv": "exposures",
    "family_history_tsv": "family_histories",
}
"""Clinical TSV formats -> the entity of their non-id columns when the header is short (v1)."""


@dataclass(frozen=True, slots=True)
class PortalFile:
    """A parsed portal file.

    Records with ``problems`` are still listed (with their raw content) so that they can be quarantined;
    ``problems`` here are about the file as a whole (encoding, columns kept only in raw, unkeyable records).
    """

    path: Path
    format: PortalFormat
    records: Sequence[SourceRecord]
    """A clinical TSV's case records are built as they are read (see
    :class:`~oncograph.sources.gdc.portal.clinical_tsv.CaseRecords`)."""
    problems: list[Problem]


def _tsv_records(sniffed: Sniffed, name: str, source: str, problems: list[Problem]) -> Sequence[SourceRecord]:
    scan = scan_table(sniffed.text or "", name)
    fmt = sniffed.format
    if fmt in _CLINICAL_TSV:
        records, unmapped = case_records(scan, name, source, _CLINICAL_TSV[fmt])
        if unmapped:
            problems.append(
                Problem(
                    name, f"{len(unmapped)} column(s) of unknown entities kept only in raw: {unmapped[:5]}"
                )
            )
        return records
    table = scan.table()
    if fmt == "biotab_clinical":
        return biotab_records(table, name, source)
    if fmt == "sample_sheet":
        return sample_sheet_records(table, name, source)
    return manifest_records(table, name, source)


def read_portal_file(path: Path) -> PortalFile:
    """Parse a GDC portal download (or saved API hits) into source records.

    Args:
        path: the file; its format is recognised from its content (see :func:`detect_format`).

    Returns:
        The file's format, one :class:`SourceRecord` per case or file (documents in the GDC API shape, ``raw``
        as delivered) and file-level problems. An empty file or a header-only TSV gives no records.

    Raises:
        InputFormatError: the layout is unknown or the JSON is not valid JSON.
        SourceError: the file cannot be read.
    """
    data = read_bytes(path)
    sniffed = sniff(path, data)
    name = path.name
    source = SOURCE_OF[sniffed.format]
    problems = list(sniffed.problems)
    records: Sequence[SourceRecord]
    if sniffed.format == "empty":
        records = []
    elif sniffed.items is not None:
        found = json_items(orjson.loads(data))
        raws = found[0] if found is not None else []
        api = sniffed.format == "api_hits_json"
        records = json_records(sniffed.items, raws, sniffed.entity_type, api, name, source)
    else:
        records = _tsv_records(sniffed, name, source, problems)
    if records and all(r.entity_type == "file" and r.entity_id is None for r in records):
        problems.append(
            Problem(name, "no record has a file_id, so none can be keyed (a 2016/2019 Files table?)")
        )
    return PortalFile(path=path, format=sniffed.format, records=records, problems=problems)
