"""BCR Biotab clinical patient supplements (``nationwidechildrens.org_clinical_patient_<disease>.txt``).

Layout: a header of field names, then a line of CDE names and a ``CDE_ID:`` line, then one row per patient.
``bcr_patient_uuid`` is the GDC ``case_id`` in upper case. Only fields with a clear GDC equivalent are put in
the document (the rest stay in ``raw``); the project is left absent: the file does not state it and a barcode
alone does not say it.
"""

from __future__ import annotations

from typing import Any, Final

from oncograph.domain.records import SourceRecord
from oncograph.sources.gdc.portal.tsv import Table, clean

DEMOGRAPHIC_MAP: Final[dict[str, str]] = {
    "gender": "gender",
    "race": "race",
    "ethnicity": "ethnicity",
    "vital_status": "vital_status",
    "birth_days_to": "days_to_birth",
    "days_to_birth": "days_to_birth",
    "death_days_to": "days_to_death",
    "days_to_death": "days_to_death",
}
"""Biotab column -> GDC demographic field."""

DIAGNOSIS_MAP: Final[dict[str, str]] = {
    "last_contact_days_to": "days_to_last_follow_up",
    "days_to_last_followup": "days_to_last_follow_up",
    "ajcc_pathologic_tumor_stage": "ajcc_pathologic_stage",
    "pathologic_stage": "ajcc_pathologic_stage",
    "ajcc_tumor_pathologic_pt": "ajcc_pathologic_t",
    "ajcc_nodes_pathologic_pn": "ajcc_pathologic_n",
    "ajcc_metastasis_pathologic_pm": "ajcc_pathologic_m",
    "ajcc_staging_edition": "ajcc_staging_system_edition",
    "clinical_stage": "ajcc_clinical_stage",
    "clinical_T": "ajcc_clinical_t",
    "clinical_N": "ajcc_clinical_n",
    "clinical_M": "ajcc_clinical_m",
    "initial_pathologic_dx_year": "year_of_diagnosis",
}
"""Biotab column -> GDC diagnosis field (``age_at_diagnosis`` is not mapped: Biotab gives years, GDC days)."""


def _is_header_line(cells: dict[str, str], first_column: str) -> bool:
    """The CDE-name line repeats the first column's name; the next one starts with ``CDE_ID:``."""
    first = cells.get(first_column, "")
    return first == first_column or first.startswith("CDE_ID")


def _mapped(cells: dict[str, str], mapping: dict[str, str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for column, target in mapping.items():
        if column in cells and out.get(target) is None:
            out[target] = clean(cells[column])
    return out


def biotab_records(table: Table, file_name: str, source: str) -> list[SourceRecord]:
    """One case record per patient row of a Biotab clinical patient file."""
    records: list[SourceRecord] = []
    first_column = table.header[0] if table.header else ""
    for row in table.rows:
        cells = row.cells
        if _is_header_line(cells, first_column):
            continue
        uuid = clean(cells.get("bcr_patient_uuid"))
        barcode = clean(cells.get("bcr_patient_barcode"))
        doc: dict[str, Any] = {}
        if uuid is not None:
            doc["case_id"] = uuid.lower()
        if barcode is not None:
            doc["submitter_id"] = barcode
        problems: list[str] = []
        if row.problem is not None:
            problems.append(row.problem)
        else:
            demographic = _mapped(cells, DEMOGRAPHIC_MAP)
            if any(v is not None for v in demographic.values()):
                doc["demographic"] = demographic
            diagnosis = _mapped(cells, DIAGNOSIS_MAP)
            if any(v is not None for v in diagnosis.values()):
                doc["diagnoses"] = [diagnosis]
        if uuid is None and barcode is None and not problems:
            problems.append("missing bcr_patient_uuid and bcr_patient_barcode")
        label = barcode or (uuid.lower() if uuid else f"at line {row.line}")
        records.append(
            SourceRecord(
                source=source,
                entity_type="case",
                entity_id=uuid.lower() if uuid else None,
                document=doc,
                raw=[row.raw()],
                path=f"{file_name} > case {label}" + (f" > line {row.line}" if row.problem else ""),
                problems=tuple(problems),
            )
        )
    return records
