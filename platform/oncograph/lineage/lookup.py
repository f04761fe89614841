"""``oncograph lineage ID``: every graph row an id names, the document versions behind it, runs, releases."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.db.documents import unpack
from oncograph.db.kinds import KINDS
from oncograph.domain.records import SHARED, with_shared
from oncograph.errors import NotFoundError


def lineage_of(session: Session, entity_id: str) -> dict[str, Any]:
    """Where a record came from: its graph rows (any kind, by GDC id or submitter id) with the document
    version each row was built from, first/last seen releases, and every stored version of the document.

    Raises:
        NotFoundError: no graph row has that id.
    """
    key = entity_id.strip()
    as_uuid: str | None
    try:
        as_uuid = str(uuid.UUID(key))
    except ValueError:
        as_uuid = None
    rows: list[dict[str, Any]] = []
    for kind in KINDS:
        clauses = []
        if kind.key_type == "uuid" and as_uuid:
            clauses.append(f"t.{kind.key} = CAST(:u AS uuid)")
        if kind.key_type == "text":
            clauses.append(f"t.{kind.key} = :k")
        if "submitter_id" in kind.spec.columns:
            clauses.append("t.submitter_id = :k")
        if not clauses:
            continue
        sql = (
            f"SELECT t.id, CAST(t.{kind.key} AS text) AS key, t.source_document_id, "
            "fr.source AS release_source, fr.release AS first_seen, lr.release AS last_seen, "
            "t.created_at, t.updated_at FROM "
            f"{kind.name} t JOIN source_release fr ON fr.id = t.first_seen_release_id "
            "JOIN source_release lr ON lr.id = t.last_seen_release_id "
            f"WHERE {' OR '.join(clauses)} ORDER BY t.id"
        )
        for r in session.execute(text(sql), {"u": as_uuid, "k": key}).mappings():
            rows.append({"kind": kind.name, **_jsonable(r)})
    if not rows:
        raise NotFoundError(
            f"no graph record has id {entity_id!r}",
            hint="pass a GDC UUID (case_id, file_id, sample_id, ...), a project id or a submitter id",
        )
    doc_ids = sorted({r["source_document_id"] for r in rows})
    docs = session.execute(
        text(
            "SELECT d.id, d.source, d.entity_type, d.entity_id, d.content_hash, d.location, d.fetched_at, "
            "r.release, d.run_id, run.transform, run.status AS run_status, run.prefect_flow_run_id, "
            "run.code_version "
            "FROM source_document d JOIN source_release r ON r.id = d.release_id JOIN run ON run.id = d.run_id "
            "WHERE (d.source, d.entity_type, d.entity_id) IN (SELECT source, entity_type, entity_id "
            "FROM source_document WHERE id = ANY(:ids)) ORDER BY d.entity_id, d.id"
        ),
        {"ids": doc_ids},
    ).mappings()
    versions = [_jsonable(d) | {"current": d["id"] in doc_ids} for d in docs]
    return {"id": entity_id, "records": rows, "documents": versions}


def whole_document(session: Session, document_id: int) -> Any:
    """A stored source document's content with the shared documents it names put back (a portal TSV case's
    rows name their file's header: ``SourceRecord.whole_raw`` of the record it was stored from).

    Raises:
        NotFoundError: no document has that id, or a shared document it names is not stored.
    """
    found = session.execute(
        text("SELECT source, raw_zstd FROM source_document WHERE id = :id"), {"id": document_id}
    ).one_or_none()
    if found is None:
        raise NotFoundError(
            f"no source document has id {document_id}", hint="ids come from `oncograph lineage`"
        )
    source, raw = found[0], unpack(found[1])
    refs = raw.get(SHARED) if isinstance(raw, dict) else None
    if not isinstance(refs, dict):
        return raw
    parts: dict[str, Any] = {}
    for name, ref in refs.items():
        entity_type, _, digest = str(ref).partition(":")
        part = session.execute(
            text(
                "SELECT raw_zstd FROM source_document WHERE source = :source AND entity_type = :type "
                "AND entity_id = :digest AND content_hash = :digest"
            ),
            {"source": source, "type": entity_type, "digest": digest},
        ).one_or_none()
        if part is None:
            raise NotFoundError(
                f"source document {document_id} names {ref}, which is not stored",
                hint="the database lost a document: restore it from a backup",
            )
        parts[name] = unpack(part[0])
    return with_shared(raw, parts)


def _jsonable(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in dict(row).items():
        out[k] = v.isoformat() if hasattr(v, "isoformat") else (str(v) if isinstance(v, uuid.UUID) else v)
    return out
