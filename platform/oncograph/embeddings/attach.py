"""Attaching an embedded object to the graph by explicit evidence only, never by guess.

A slide file is matched, in this order:

1. by GDC file id: the id it was fetched by (``/data/{file_id}``), or a UUID that is the name of its folder
   (gdc-client saves ``<file_id>/<file_name>``) or a dot-separated part of its name, when that UUID is a
   ``data_file.file_id`` in the graph;
2. by md5: the file's md5 equals exactly one live ``data_file.md5sum``;
3. by TCGA barcode: the file name starts with a TCGA barcode (sample, portion or slide level; tools often
   lower-case names, so the name is upper-cased first) whose 12-character patient barcode is exactly one live
   patient's ``submitter_id``. The slide is then the patient's, not any particular ``data_file``.

A DICOM series is matched by SeriesInstanceUID to the graph's ``imaging_series`` (and so to its IDC patient,
and through an IDC identity link to the GDC patient). A clinical summary is its patient's by construction.
What matches nothing is ``unattached``: embedded and reported, with a NULL patient.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.domain.barcodes import parse_tcga_barcode

_BARCODE_PREFIX = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}(?:-[0-9A-Z]+)*)")


@dataclass(frozen=True, slots=True)
class Attachment:
    """Where an object belongs: its patient (None when unattached), the graph object, and the evidence."""

    attached_by: str
    patient_id: int | None = None
    object_kind: str = "file"
    object_id: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def attached(self) -> bool:
        return self.attached_by != "unattached"


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def candidate_file_ids(path: Path, file_id: str | None = None) -> list[str]:
    """The GDC file ids a local file may carry: the id it was fetched by, its folder's name, parts of its name."""
    found = [file_id] if file_id else []
    found.append(path.parent.name)
    found.extend(path.name.split("."))
    ids = [u for u in (_uuid(v) for v in found if v) if u]
    return list(dict.fromkeys(ids))


def _file_patient(session: Session, where: str, params: dict[str, Any]) -> list[tuple[str, int | None]]:
    rows = session.execute(
        text(
            "SELECT f.file_id::text, min(fp.patient_id) FILTER (WHERE p.retired_release_id IS NULL), "
            "count(DISTINCT fp.patient_id) FILTER (WHERE p.retired_release_id IS NULL) FROM data_file f "
            "LEFT JOIN file_patient fp ON fp.file_id = f.id LEFT JOIN patient p ON p.id = fp.patient_id "
            f"WHERE f.retired_release_id IS NULL AND {where} GROUP BY f.file_id"
        ),
        params,
    ).all()
    # a file shared by several patients is attached to none of them (its row still names the file)
    return [(fid, pid if n == 1 else None) for fid, pid, n in rows]


def barcode_in_name(name: str) -> str | None:
    """The 12-character TCGA patient barcode a file name starts with, if any (case-folded)."""
    match = _BARCODE_PREFIX.match(name.upper())
    if not match:
        return None
    parsed = parse_tcga_barcode(match.group(1))
    if parsed is None:
        # the longest prefix may swallow a suffix such as a file-name UUID part: try shorter barcodes
        parts = match.group(1).split("-")
        for end in range(len(parts) - 1, 2, -1):
            parsed = parse_tcga_barcode("-".join(parts[:end]))
            if parsed is not None:
                break
    return parsed.patient if parsed is not None else None


def attach_file(session: Session, path: Path, *, md5: str, file_id: str | None = None) -> Attachment:
    """Match a local slide (or any data file) to the graph: file id, else md5, else barcode, else unattached."""
    ids = candidate_file_ids(path, file_id)
    if ids:
        hits = _file_patient(session, "f.file_id::text = ANY(:ids)", {"ids": ids})
        if len(hits) == 1:
            fid, pid = hits[0]
            return Attachment("file_id", pid, "data_file", fid, {"file_id": fid})
    hits = _file_patient(session, "f.md5sum = :md5", {"md5": md5.lower()})
    if len(hits) == 1:
        fid, pid = hits[0]
        return Attachment("md5", pid, "data_file", fid, {"md5": md5.lower(), "file_id": fid})
    barcode = barcode_in_name(path.name)
    if barcode is not None:
        patients = (
            session.execute(
                text("SELECT id FROM patient WHERE submitter_id = :b AND retired_release_id IS NULL"),
                {"b": barcode},
            )
            .scalars()
            .all()
        )
        if len(patients) == 1:
            return Attachment(
                "barcode", int(patients[0]), "slide_file", "", {"barcode": barcode, "name": path.name}
            )
    evidence: dict[str, Any] = {"md5": md5.lower(), "name": path.name}
    if len(hits) > 1:
        evidence["ambiguous_md5_files"] = len(hits)
    return Attachment("unattached", None, "slide_file", "", evidence)


def attach_series(session: Session, series_uid: str) -> tuple[Attachment, int | None]:
    """Match a DICOM series to ``imaging_series``; returns the attachment and the IDC index's instance count."""
    row = session.execute(
        text(
            "SELECT s.id, s.instance_count, ip.collection_id, ip.patient_id, "
            "(SELECT min(l.patient_id) FROM identity_link l WHERE l.commons = 'idc' "
            " AND l.namespace = ip.collection_id AND l.external_id = ip.patient_id) AS gdc_patient "
            "FROM imaging_series s JOIN idc_patient ip ON ip.id = s.idc_patient_id "
            "WHERE s.series_instance_uid = :u AND s.retired_release_id IS NULL"
        ),
        {"u": series_uid},
    ).first()
    if row is None:
        return Attachment("unattached", None, "imaging_series", series_uid, {"series_uid": series_uid}), None
    evidence = {"series_uid": series_uid, "idc_collection": row.collection_id, "idc_patient": row.patient_id}
    return (
        Attachment("series_uid", row.gdc_patient, "imaging_series", series_uid, evidence),
        row.instance_count,
    )
