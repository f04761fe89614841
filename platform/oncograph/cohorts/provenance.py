"""The lineage of a record (:func:`oncograph.lineage.lineage_of`) under an access scope: records and documents
the scope may not see are left out, and an id with nothing visible does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session

from oncograph.access import Scope
from oncograph.access.policy import hidden_project, patient_project_visible, visible_file
from oncograph.cohorts.fields import PATIENT
from oncograph.db.models import Base
from oncograph.errors import NotFoundError
from oncograph.lineage import lineage_of

_T: Callable[[str], Table] = Base.metadata.tables.__getitem__


def visible_lineage(session: Session, entity_id: str, scope: Scope) -> dict[str, Any]:
    """:func:`oncograph.lineage.lineage_of` without the records the scope may not see (rows of controlled
    projects without a grant, controlled files without one) and without their documents.

    Raises:
        NotFoundError: nothing visible has that id (whether or not something invisible has).
    """
    info = lineage_of(session, entity_id)
    if scope.unrestricted:
        return info
    conn = session.connection()
    by_kind: dict[str, set[int]] = {}
    for rec in info["records"]:
        by_kind.setdefault(rec["kind"], set()).add(int(rec["id"]))
    allowed: set[tuple[str, int]] = set()
    for kind, ids in by_kind.items():
        allowed |= {(kind, i) for i in _visible_rows(conn, kind, sorted(ids), scope)}
    records = [r for r in info["records"] if (r["kind"], int(r["id"])) in allowed]
    if not records:
        raise NotFoundError(
            f"no graph record has id {entity_id!r}",
            hint="pass a GDC UUID (case_id, file_id, sample_id, ...), a project id or a submitter id",
        )
    current = {int(r["source_document_id"]) for r in records}
    entities = {
        (d["source"], d["entity_type"], d["entity_id"]) for d in info["documents"] if int(d["id"]) in current
    }
    documents = [d for d in info["documents"] if (d["source"], d["entity_type"], d["entity_id"]) in entities]
    return {**info, "records": records, "documents": documents}


def _visible_rows(conn: Connection, kind: str, ids: list[int], scope: Scope) -> list[int]:
    table = _T(kind)
    if kind == "program":
        return ids
    if kind == "project":
        q = select(table.c.id).where(table.c.id.in_(ids), not_(hidden_project(scope, table)))
    elif kind == "data_file":
        fp, p = _T("file_patient"), PATIENT.alias("lfp")
        patients = select(p.c.id).join(fp, fp.c.patient_id == p.c.id).where(fp.c.file_id == table.c.id)
        q = select(table.c.id).where(
            table.c.id.in_(ids),
            or_(
                ~patients.exists(),
                patients.where(
                    patient_project_visible(scope, p), visible_file(scope, table, p.c.id)
                ).exists(),
            ),
        )
    else:
        patient = PATIENT.alias("lpt")
        match = patient.c.id == (table.c.id if kind == "patient" else table.c.patient_id)
        q = (
            select(table.c.id)
            .join(patient, match)
            .where(table.c.id.in_(ids), patient_project_visible(scope, patient))
        )
    return [int(i) for i in conn.execute(q).scalars()]
