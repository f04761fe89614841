"""Patient id lists as users have them: a GDC portal cohort or cases-table export (TSV/CSV/JSON), a sample
sheet, a BCR Biotab file, a saved ``/cases`` answer, or plain text with one id per line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from oncograph.errors import ValidationError

#: Header names of id columns, most specific first (GDC portal v1/v2 exports, sample sheets, BCR Biotab).
_ID_COLUMNS = (
    "case_id",
    "cases.case_id",
    "id",
    "case_uuid",
    "bcr_patient_uuid",
    "submitter_id",
    "cases.submitter_id",
    "case_submitter_id",
    "Case ID",
    "bcr_patient_barcode",
)


def read_id_file(content: bytes | str | Path) -> list[str]:
    """Patient ids from an uploaded list: plain text (one per line), TSV/CSV with a ``case_id`` / ``id`` /
    ``submitter_id`` column (a GDC portal cohort or cases-table export), or JSON (a list of ids, a list of
    objects with one of those keys, or ``{"case_ids": [...]}``).

    Raises:
        ValidationError: no ids could be read; the message says which layouts are understood.
    """
    raw = content.read_bytes() if isinstance(content, Path) else content
    textual = raw.decode("utf-8-sig", errors="replace") if isinstance(raw, bytes) else raw
    stripped = textual.strip()
    ids: list[str] = []
    if stripped.startswith(("[", "{")):
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"the id file looks like JSON but does not parse: {exc}") from exc
        if isinstance(doc, dict):
            data = doc.get("data")
            doc = (
                doc.get("case_ids")
                or doc.get("ids")
                or (data.get("hits") if isinstance(data, dict) else None)
                or []
            )
        for item in doc if isinstance(doc, list) else []:
            if isinstance(item, str):
                ids.append(item)
            elif isinstance(item, dict):
                for key in ("case_id", "id", "submitter_id"):
                    if isinstance(item.get(key), str):
                        ids.append(item[key])
                        break
    else:
        lines = [line for line in stripped.splitlines() if line.strip()]
        if lines:
            dialect = "\t" if "\t" in lines[0] else ("," if "," in lines[0] else None)
            if dialect is None and lines[0].strip() in _ID_COLUMNS:
                dialect = "\t"
            if dialect:
                reader = csv.DictReader(io.StringIO("\n".join(lines)), delimiter=dialect)
                header = [h.strip() for h in reader.fieldnames or []]
                column = next((c for c in _ID_COLUMNS if c in header), None)
                if column is None:
                    raise ValidationError(
                        f"no id column in the header {header[:10]}",
                        hint=f"name one column {', '.join(_ID_COLUMNS[:3])} or submitter_id",
                    )
                for row in reader:
                    # a sample sheet row of a multi-case file lists its cases comma-separated
                    for value in (row.get(column) or "").split(","):
                        value = value.strip()
                        if value and not value.startswith("'--") and not value.startswith("["):
                            ids.append(value)
            else:
                first = lines[0].strip().lower()
                body = lines[1:] if first in _ID_COLUMNS else lines
                ids = [line.strip() for line in body]
    ids = [i for i in dict.fromkeys(i.strip() for i in ids) if i]
    if not ids:
        raise ValidationError(
            "no patient ids found in the file",
            hint="give one id per line, a TSV/CSV with a case_id or submitter_id column, or a JSON list",
        )
    return ids
