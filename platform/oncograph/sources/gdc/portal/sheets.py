"""Portal sample sheets and gdc-client manifests -> file records.

A sample sheet row describes one file and the case(s)/sample(s) it comes from. A cell may list several
comma-separated values (a tumour/normal MAF names two samples, and repeats the case once per sample); they are
paired by position. A manifest row gives the file id, name, md5, size and state.
"""

from __future__ import annotations

import re
from typing import Any, Final

from oncograph.domain.records import SourceRecord
from oncograph.sources.gdc.portal.tsv import Row, Table, clean

SHEET_FILE_COLUMNS: Final[dict[str, str]] = {
    "File ID": "file_id",
    "File Name": "file_name",
    "Data Category": "data_category",
    "Data Type": "data_type",
}
SHEET_SAMPLE_COLUMNS: Final[dict[str, str]] = {
    "Sample Type": "sample_type",
    "Tissue Type": "tissue_type",
    "Tumor Descriptor": "tumor_descriptor",
    "Specimen Type": "specimen_type",
    "Preservation Method": "preservation_method",
}
_MD5 = re.compile(r"[0-9a-fA-F]{32}")


def _split(cell: str | None) -> list[str | None]:
    if cell is None:
        return []
    return [clean(part.strip()) for part in cell.split(",")]


def _pick(values: list[str | None], index: int, count: int) -> tuple[bool, str | None]:
    """The value for item ``index`` of ``count``: positional, or the one value shared by all."""
    if len(values) == count:
        return True, values[index]
    if len(set(values)) == 1:
        return True, values[0]
    return False, None


def _sheet_cases(
    row: Row, cells: dict[str, str], problems: list[str], file_name: str
) -> list[dict[str, Any]]:
    case_ids = _split(cells.get("Case ID"))
    sample_ids = _split(cells.get("Sample ID"))
    projects = _split(cells.get("Project ID"))
    cases: dict[str, dict[str, Any]] = {}
    for index, case_id in enumerate(case_ids):
        if case_id is None or case_id in cases:
            continue
        case: dict[str, Any] = {"submitter_id": case_id}
        if "Project ID" in cells:
            ok, project = _pick(projects, index, len(case_ids))
            if ok:
                case["project"] = {"project_id": project}
            else:
                problems.append(f"{file_name} line {row.line}: cannot pair Project ID values with Case IDs")
        cases[case_id] = case
    for index, sample_id in enumerate(sample_ids):
        if sample_id is None:
            continue
        owner: str | None
        if len(case_ids) == len(sample_ids):
            owner = case_ids[index]
        elif len(cases) == 1:
            owner = next(iter(cases))
        else:
            owner = next((c for c in cases if sample_id.startswith(c)), None)
        if owner is None or owner not in cases:
            problems.append(f"{file_name} line {row.line}: sample {sample_id} matches no Case ID")
            continue
        sample: dict[str, Any] = {"submitter_id": sample_id}
        for column, field in SHEET_SAMPLE_COLUMNS.items():
            if column not in cells:
                continue
            ok, value = _pick(_split(cells[column]), index, len(sample_ids))
            if ok:
                sample[field] = value
            else:
                problems.append(f"{file_name} line {row.line}: cannot pair {column} values with Sample IDs")
        samples = cases[owner].setdefault("samples", [])
        if all(s["submitter_id"] != sample_id for s in samples):
            samples.append(sample)
    return list(cases.values())


def _file_record(
    row: Row, doc: dict[str, Any], problems: list[str], file_name: str, source: str
) -> SourceRecord:
    if row.problem is not None:
        problems.insert(0, row.problem)
    file_id = doc.get("file_id")
    if file_id is None:
        problems.append("missing file_id")
    label = doc.get("file_name") or file_id or f"at line {row.line}"
    return SourceRecord(
        source=source,
        entity_type="file",
        entity_id=file_id.lower() if isinstance(file_id, str) else None,
        document=doc,
        raw=row.raw(),
        path=f"{file_name} > file {label}" + (f" > line {row.line}" if row.problem else ""),
        problems=tuple(problems),
    )


def sample_sheet_records(table: Table, file_name: str, source: str) -> list[SourceRecord]:
    """One file record per sample-sheet row, with ``cases[].samples[]`` built from the case/sample columns."""
    records: list[SourceRecord] = []
    for row in table.rows:
        cells = row.cells
        doc: dict[str, Any] = {
            field: clean(cells[column]) for column, field in SHEET_FILE_COLUMNS.items() if column in cells
        }
        problems: list[str] = []
        if row.problem is None and "Case ID" in table.header:
            doc["cases"] = _sheet_cases(row, cells, problems, file_name)
        records.append(_file_record(row, doc, problems, file_name, source))
    return records


def manifest_records(table: Table, file_name: str, source: str) -> list[SourceRecord]:
    """One file record per gdc-client manifest row (``id filename md5 size state``)."""
    records: list[SourceRecord] = []
    for row in table.rows:
        cells = row.cells
        doc: dict[str, Any] = {}
        problems: list[str] = []
        for column, field in (("id", "file_id"), ("filename", "file_name"), ("md5", "md5sum")):
            if column in cells:
                doc[field] = clean(cells[column])
        md5 = doc.get("md5sum")
        if md5 is not None and not _MD5.fullmatch(md5):
            problems.append(f"{file_name} line {row.line}: md5 {md5!r} is not a 32-digit hex digest")
        size = clean(cells.get("size"))
        if size is not None and size.isdigit():
            doc["file_size"] = int(size)
        elif "size" in cells:
            if size is None:
                doc["file_size"] = None
            else:
                problems.append(f"{file_name} line {row.line}: size {size!r} is not a whole number of bytes")
        if "state" in cells:
            doc["state"] = clean(cells["state"])
        records.append(_file_record(row, doc, problems, file_name, source))
    return records
