"""Source releases and what changed between two of them (``oncograph releases diff A B``).

Per graph kind: ``added`` (first seen after A, up to B), ``changed`` (seen at A, and rebuilt from a document
version fetched after A, up to B), ``retired`` (retired after A, up to B). Per source entity (case, file,
project): ``new`` and ``changed`` document versions, from the append-only ``source_document`` table, so the
document side stays exact for any pair of releases. Releases of one source are ordered by when oncograph
first saw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from oncograph.db.kinds import KINDS
from oncograph.errors import NotFoundError, ValidationError


def list_releases(session: Session, *, source: str | None = None) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT r.id, r.source, r.release, r.first_seen_at, count(d.id) AS documents "
            "FROM source_release r LEFT JOIN source_document d ON d.release_id = r.id "
            "WHERE CAST(:source AS text) IS NULL OR r.source = :source GROUP BY r.id ORDER BY r.source, r.id"
        ),
        {"source": source},
    ).mappings()
    return [{**r, "first_seen_at": r["first_seen_at"].isoformat()} for r in rows]


def resolve_release(session: Session, ref: str, *, source: str | None = None) -> dict[str, Any]:
    """A release by id, exact label, or unique label prefix (``"Data Release 45"``).

    Raises:
        NotFoundError: nothing matches. ValidationError: the prefix is ambiguous.
    """
    rows = list(
        session.execute(
            text(
                "SELECT id, source, release FROM source_release WHERE (CAST(id AS text) = :ref OR release = :ref "
                "OR release LIKE :prefix) AND (CAST(:source AS text) IS NULL OR source = :source) ORDER BY id"
            ),
            {"ref": ref, "prefix": ref.replace("%", r"\%").replace("_", r"\_") + "%", "source": source},
        ).mappings()
    )
    exact = [r for r in rows if str(r["id"]) == ref or r["release"] == ref]
    if len(exact) == 1:
        return dict(exact[0])
    if not rows:
        raise NotFoundError(f"no source release matches {ref!r}", hint="see `oncograph releases list`")
    if len(rows) > 1:
        names = ", ".join(f"{r['id']}: {r['release']}" for r in rows[:5])
        raise ValidationError(f"{ref!r} matches several releases ({names})", hint="pass the release id")
    return dict(rows[0])


def diff_releases(session: Session, a: str, b: str) -> dict[str, Any]:
    """What changed from release ``a`` to release ``b`` of the same source."""
    ra, rb = resolve_release(session, a), resolve_release(session, b)
    if ra["source"] != rb["source"]:
        raise ValidationError(
            f"releases {ra['release']!r} ({ra['source']}) and {rb['release']!r} ({rb['source']}) are of "
            "different sources",
            hint="diff two releases of one source",
        )
    if ra["id"] > rb["id"]:
        ra, rb = rb, ra
    window = "BETWEEN :a + 1 AND :b"
    same_source = "IN (SELECT id FROM source_release WHERE source = :source)"
    params = {"a": ra["id"], "b": rb["id"], "source": ra["source"]}
    entities: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        row = session.execute(
            text(
                f"SELECT count(*) FILTER (WHERE t.first_seen_release_id {window} AND t.first_seen_release_id "
                f"{same_source}) AS added, "
                f"count(*) FILTER (WHERE t.first_seen_release_id <= :a AND d.release_id {window} "
                f"AND d.release_id {same_source}) AS changed, "
                f"count(*) FILTER (WHERE t.retired_release_id {window} AND t.retired_release_id {same_source}) "
                f"AS retired FROM {kind.name} t JOIN source_document d ON d.id = t.source_document_id"
            ),
            params,
        ).one()
        if any(row):
            entities[kind.name] = {"added": int(row[0]), "changed": int(row[1]), "retired": int(row[2])}
    documents: dict[str, dict[str, int]] = {}
    for etype, new, changed in session.execute(
        text(
            "WITH v AS (SELECT entity_type, entity_id, bool_or(release_id <= :a) AS before, "
            f"bool_or(release_id {window}) AS after FROM source_document WHERE release_id {same_source} "
            "GROUP BY entity_type, entity_id) "
            "SELECT entity_type, count(*) FILTER (WHERE after AND NOT before), "
            "count(*) FILTER (WHERE after AND before) FROM v GROUP BY entity_type ORDER BY entity_type"
        ),
        params,
    ):
        documents[etype] = {"new": int(new), "changed": int(changed)}
    return {
        "source": ra["source"],
        "from": {"id": ra["id"], "release": ra["release"]},
        "to": {"id": rb["id"], "release": rb["release"]},
        "entities": entities,
        "documents": documents,
    }


#: Graph tables whose rows belong to one patient (``patient_id``) and carry their lineage columns.
_PATIENT_ROWS = (
    "demographic",
    "diagnosis",
    "treatment",
    "follow_up",
    "exposure",
    "family_history",
    "pathology_detail",
    "sample",
    "portion",
    "analyte",
    "aliquot",
    "slide",
)


def _release_parts(members: str | None) -> list[str]:
    """``SELECT patient_id, release_id`` of every live row of the patients (``members``: a subquery of their
    ids; None: all patients), one statement per kind of row (see :func:`member_releases`)."""

    def among(column: str) -> str:
        return f" AND {column} IN ({members})" if members else ""

    doc = "JOIN source_document d ON d.id = {}.source_document_id"
    parts = [
        f"SELECT p.id AS patient_id, d.release_id FROM patient p {doc.format('p')} WHERE true{among('p.id')}"
    ]
    parts += [
        f"SELECT t.patient_id, d.release_id FROM {t} t {doc.format('t')} "
        f"WHERE t.retired_release_id IS NULL{among('t.patient_id')}"
        for t in _PATIENT_ROWS
    ]
    parts.append(
        "SELECT fp.patient_id, d.release_id FROM file_patient fp JOIN data_file f ON f.id = fp.file_id "
        f"{doc.format('f')} WHERE f.retired_release_id IS NULL{among('fp.patient_id')}"
    )
    idc = (
        "FROM identity_link l JOIN idc_patient ip ON l.commons = 'idc' AND ip.collection_id = l.namespace "
        "AND ip.patient_id = l.external_id"
    )
    parts.append(
        f"SELECT l.patient_id, d.release_id {idc} {doc.format('ip')} "
        f"WHERE ip.retired_release_id IS NULL{among('l.patient_id')}"
    )
    parts.append(
        f"SELECT l.patient_id, d.release_id {idc} JOIN imaging_series s ON s.idc_patient_id = ip.id "
        f"{doc.format('s')} WHERE s.retired_release_id IS NULL{among('l.patient_id')}"
    )
    parts.append(
        "SELECT l.patient_id, d.release_id FROM identity_link l JOIN pdc_case c ON l.commons = 'pdc' "
        f"AND c.case_id::text = l.external_id {doc.format('c')} "
        f"WHERE c.retired_release_id IS NULL{among('l.patient_id')}"
    )
    return parts


def patient_release_queries() -> list[str]:
    """``SELECT DISTINCT patient_id, release_id`` of every patient's live rows, one statement per kind of row
    (each takes a fraction of a second at 100k patients; their UNION as one statement made the planner take
    minutes): the facts the cohort index keeps so that freezing a version does not scan its members' rows."""
    return [f"SELECT DISTINCT patient_id, release_id FROM ({part}) r" for part in _release_parts(None)]


def releases_by_id(session: Session, release_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The releases of these ids, in the order :func:`member_releases` gives them."""
    rows = session.execute(
        text(
            "SELECT r.id, r.source, r.release FROM source_release r WHERE r.id = ANY(CAST(:ids AS bigint[])) "
            "ORDER BY r.source, r.id"
        ),
        {"ids": list(release_ids)},
    ).all()
    return [{"source": s, "release": r, "id": i} for i, s, r in rows]


def member_releases(session: Session, version_id: int) -> list[dict[str, Any]]:
    """The source releases a cohort version's members' current rows came from: the release of the document
    version each live row was built from, for the patients, their clinical and biospecimen rows, their files,
    their linked IDC patients and series and PDC cases. A release that changed no member row (an empty portal
    file, a re-import of the same data, another project's harvest) is not one of them, so it cannot make a
    frozen cohort look changed."""
    members = "SELECT patient_id FROM cohort_member WHERE cohort_version_id = :v"
    parts = [f"SELECT release_id FROM ({part}) x" for part in _release_parts(members)]
    rows = session.execute(
        text(
            "SELECT r.id, r.source, r.release FROM source_release r WHERE r.id IN ("
            + " UNION ".join(parts)
            + ") ORDER BY r.source, r.id"
        ),
        {"v": version_id},
    ).all()
    return [{"source": s, "release": r, "id": i} for i, s, r in rows]
