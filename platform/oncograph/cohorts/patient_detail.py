"""One patient's whole graph under an access scope: clinical and biospecimen records, files, imaging and
proteomics, each record with its lineage (source document version, first and last seen releases). Controlled
records without a grant are left out (:mod:`oncograph.access.policy`); a patient the scope may not see does not
exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Text,
    and_,
    cast,
    func,
    select,
)

from oncograph.access import Scope
from oncograph.access.policy import visible_file
from oncograph.cohorts.fields import PATIENT, PROJECT, live
from oncograph.cohorts.patients import jsonable, resolve_patient
from oncograph.db.models import Base
from oncograph.db.models.base import LINEAGE_COLUMNS

_T: Callable[[str], Table] = Base.metadata.tables.__getitem__

_LINEAGE_COLUMNS = frozenset({"id", *LINEAGE_COLUMNS})
_NOT_SHOWN = _LINEAGE_COLUMNS | {"created_at", "updated_at", "row_hash", "index_row", "vector"}


class _Lineage:
    """Collects the lineage ids of records and fills in names of documents and releases in two queries."""

    def __init__(self) -> None:
        self.pending: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def record(self, table: Table, row: Any) -> dict[str, Any]:
        """A record's columns as JSON (foreign keys and lineage columns left out) plus ``lineage``."""
        shown = {
            c.name: jsonable(row[c.name])
            for c in table.columns
            if c.name not in _NOT_SHOWN and not c.foreign_keys
        }
        if "source_document_id" in table.c:
            lineage = {k: row[k] for k in _LINEAGE_COLUMNS if k != "id"}
            if "index_row" in table.c:
                lineage["index_row"] = row["index_row"]
            shown["lineage"] = lineage
            self.pending.append((shown, lineage))
        else:
            shown["lineage"] = {"run_id": row["run_id"], "created_at": jsonable(row["created_at"])}
        return shown

    def resolve(self, conn: Connection) -> None:
        docs = {int(p[1]["source_document_id"]) for p in self.pending}
        if not docs:
            return
        d, r = _T("source_document"), _T("source_release")
        doc_rows = {
            row.id: row
            for row in conn.execute(
                select(d.c.id, d.c.source, d.c.entity_type, d.c.entity_id, d.c.release_id, d.c.run_id).where(
                    d.c.id.in_(sorted(docs))
                )
            )
        }
        release_ids = {row.release_id for row in doc_rows.values()}
        for _, lin in self.pending:
            release_ids |= {lin[k] for k in ("first_seen_release_id", "last_seen_release_id")}
            if lin["retired_release_id"] is not None:
                release_ids.add(lin["retired_release_id"])
        releases = {
            row.id: row.release
            for row in conn.execute(select(r.c.id, r.c.release).where(r.c.id.in_(release_ids)))
        }
        for _, lin in self.pending:
            doc = doc_rows[lin["source_document_id"]]
            retired = lin.pop("retired_release_id")
            lin.update(
                source=doc.source,
                entity_type=doc.entity_type,
                entity_id=doc.entity_id,
                release=releases.get(doc.release_id),
                run_id=doc.run_id,
                first_seen=releases.get(lin.pop("first_seen_release_id")),
                last_seen=releases.get(lin.pop("last_seen_release_id")),
                retired=releases.get(retired) if retired is not None else None,
            )


def _rows(
    conn: Connection,
    table: Table,
    *where: ColumnElement[bool],
    include_retired: bool,
    order: Sequence[str] = (),
) -> list[Any]:
    q = select(table).where(*where)
    if not include_retired and "retired_release_id" in table.c:
        q = q.where(live(table))
    q = q.order_by(*[table.c[o] for o in order], table.c.id)
    return list(conn.execute(q).mappings())


Pairs = Callable[..., list[tuple[Any, dict[str, Any]]]]
"""``pairs(table_name, *where, order=[...])`` -> (row, record) of the matching rows."""


def patient_detail(
    conn: Connection, key: str, scope: Scope, *, include_retired: bool = False
) -> dict[str, Any]:
    """The whole graph of one patient: project, demographic, diagnoses (with treatments and pathology
    details), follow-ups, exposures, family histories, samples (portions, analytes, aliquots, slides), the
    visible files, IDC imaging (studies with their series), PDC proteomics (cases, studies, file counts),
    identity links and embeddings (not the vectors).

    Every graph record carries ``lineage``: the source document its values came from (source, entity,
    release, run), the first and last release it was seen in and the release that retired it. Links and
    embeddings carry the run that made them. Records retired from their source are left out unless
    ``include_retired``.

    Raises:
        NotFoundError: no such patient, or one the scope may not see.
    """
    pid = resolve_patient(conn, key, scope, live_only=False)
    lin = _Lineage()

    def pairs(
        name: str, *where: ColumnElement[bool], order: Sequence[str] = ()
    ) -> list[tuple[Any, dict[str, Any]]]:
        table = _T(name)
        rows = _rows(conn, table, *where, include_retired=include_retired, order=order)
        return [(r, lin.record(table, r)) for r in rows]

    def mine(name: str, order: Sequence[str] = ()) -> list[tuple[Any, dict[str, Any]]]:
        return pairs(name, _T(name).c.patient_id == pid, order=order)

    patient_row = conn.execute(select(PATIENT).where(PATIENT.c.id == pid)).mappings().one()
    out: dict[str, Any] = {"patient": lin.record(PATIENT, patient_row)}
    out["project"] = _project(conn, patient_row["project_id"], pairs)
    demographic = mine("demographic")
    out["demographic"] = demographic[0][1] if demographic else None
    treatments = mine("treatment", ["days_to_treatment_start"])
    pathology = mine("pathology_detail")
    diagnoses = mine("diagnosis", ["days_to_diagnosis"])
    for row, rec in diagnoses:
        rec["treatments"] = [tr for r, tr in treatments if r["diagnosis_id"] == row["id"]]
        rec["pathology_details"] = [pd for r, pd in pathology if r["diagnosis_id"] == row["id"]]
    shown = {row["id"] for row, _ in diagnoses}
    out["diagnoses"] = [rec for _, rec in diagnoses]
    out["treatments_without_diagnosis"] = [tr for r, tr in treatments if r["diagnosis_id"] not in shown]
    out["follow_ups"] = [rec for _, rec in mine("follow_up", ["days_to_follow_up"])]
    out["exposures"] = [rec for _, rec in mine("exposure")]
    out["family_histories"] = [rec for _, rec in mine("family_history")]
    out["samples"] = _samples(mine)
    out["files"] = _files(conn, pid, scope, lin)
    out["imaging"] = _imaging(conn, pid, pairs)
    out["proteomics"] = _proteomics(conn, pid, pairs)
    links = _T("identity_link")
    out["identity_links"] = [
        lin.record(links, r)
        for r in conn.execute(
            select(links).where(links.c.patient_id == pid).order_by(links.c.commons, links.c.external_id)
        ).mappings()
    ]
    emb = _T("embedding")
    out["embeddings"] = [
        public_embedding(lin.record(emb, r), int(r["id"]))
        for r in conn.execute(
            select(*[c for c in emb.c if c.name != "vector"])
            .where(emb.c.patient_id == pid)
            .order_by(emb.c.model, emb.c.object_kind, emb.c.object_id)
        ).mappings()
    ]
    lin.resolve(conn)
    return out


def local_source(source_uri: str | None) -> Path | None:
    """The local file a ``source_uri`` names, when it is an absolute path to an existing file here."""
    if not source_uri or "://" in source_uri:
        return None
    path = Path(source_uri)
    return path if path.is_absolute() and path.is_file() else None


def public_embedding(record: dict[str, Any], embedding_id: int) -> dict[str, Any]:
    """An embedding record for clients: its id, no server paths (``source_uri`` reduced to the file's name
    when local, ``features_uri`` to whether the per-tile features exist), and ``thumbnail``: whether
    :func:`slide_thumbnail` can render it."""
    out = dict(record)
    out["id"] = embedding_id
    source = out.get("source_uri")
    local = local_source(source)
    if source and "://" not in source:
        out["source_uri"] = None
        out["source_name"] = Path(source).name
    features = out.pop("features_uri", None)
    out["has_features"] = bool(features)
    details = dict(out.get("details") or {})
    if isinstance(details.get("slide"), dict):
        details["slide"] = {k: v for k, v in details["slide"].items() if k != "path"}
    out["details"] = details
    out["thumbnail"] = out.get("modality") == "slide" and local is not None
    return out


def _project(conn: Connection, project_row_id: int | None, pairs: Pairs) -> dict[str, Any] | None:
    if project_row_id is None:
        return None
    found = pairs("project", PROJECT.c.id == project_row_id)
    if not found:
        return None
    row, rec = found[0]
    program = _T("program")
    rec["program"] = (
        conn.execute(select(program.c.name).where(program.c.id == row["program_id"])).scalar_one_or_none()
        if row["program_id"] is not None
        else None
    )
    return rec


def _samples(mine: Pairs) -> list[dict[str, Any]]:
    portions = mine("portion")
    analytes = mine("analyte")
    aliquots = mine("aliquot")
    slides = mine("slide")
    out = []
    for s_row, sample in mine("sample", ["submitter_id"]):
        sample["portions"] = []
        for p_row, portion in portions:
            if p_row["sample_id"] != s_row["id"]:
                continue
            portion["analytes"] = []
            for a_row, analyte in analytes:
                if a_row["portion_id"] == p_row["id"]:
                    analyte["aliquots"] = [al for r, al in aliquots if r["analyte_id"] == a_row["id"]]
                    portion["analytes"].append(analyte)
            portion["slides"] = [sl for r, sl in slides if r["portion_id"] == p_row["id"]]
            sample["portions"].append(portion)
        out.append(sample)
    return out


def _files(conn: Connection, pid: int, scope: Scope, lin: _Lineage) -> list[dict[str, Any]]:
    """The patient's live files that the scope may see, each with the GDC ids of its samples."""
    f, fp, fs, s = _T("data_file"), _T("file_patient"), _T("file_sample"), _T("sample")
    rows = conn.execute(
        select(f)
        .join(fp, fp.c.file_id == f.c.id)
        .where(fp.c.patient_id == pid, visible_file(scope, f, fp.c.patient_id))
        .order_by(f.c.data_category, f.c.data_type, f.c.file_name, f.c.id)
    ).mappings()
    files = [(int(r["id"]), lin.record(f, r)) for r in rows]
    samples: dict[int, list[str]] = {}
    if files:
        for file_id, sample_id in conn.execute(
            select(fs.c.file_id, s.c.sample_id)
            .join(s, s.c.id == fs.c.sample_id)
            .where(fs.c.file_id.in_([i for i, _ in files]), s.c.patient_id == pid)
            .order_by(s.c.sample_id)
        ):
            samples.setdefault(int(file_id), []).append(str(sample_id))
    for file_id, rec in files:
        rec["sample_ids"] = samples.get(file_id, [])
    return [rec for _, rec in files]


def _imaging(conn: Connection, pid: int, pairs: Pairs) -> list[dict[str, Any]]:
    """IDC patients linked to the patient, each with its studies and, per study, the series list."""
    links, ip = _T("identity_link"), _T("idc_patient")
    study, series = _T("imaging_study"), _T("imaging_series")
    linked = (
        select(ip.c.id)
        .join(links, and_(links.c.namespace == ip.c.collection_id, links.c.external_id == ip.c.patient_id))
        .where(links.c.patient_id == pid, links.c.commons == "idc")
    )
    out = []
    for ip_row, idc_patient in pairs(
        "idc_patient", ip.c.id.in_(linked), order=["collection_id", "patient_id"]
    ):
        all_series = pairs(
            "imaging_series", series.c.idc_patient_id == ip_row["id"], order=["series_date", "series_number"]
        )
        studies = []
        for st_row, rec in pairs(
            "imaging_study", study.c.idc_patient_id == ip_row["id"], order=["study_date"]
        ):
            rec["series"] = [s for r, s in all_series if r["imaging_study_id"] == st_row["id"]]
            rec["series_count"] = len(rec["series"])
            rec["modalities"] = sorted({s["modality"] for s in rec["series"] if s.get("modality")})
            studies.append(rec)
        idc_patient["studies"] = studies
        out.append(idc_patient)
    return out


def _proteomics(conn: Connection, pid: int, pairs: Pairs) -> list[dict[str, Any]]:
    """PDC cases linked to the patient, each with its studies and the studies' files counted by type (PDC
    files belong to studies, not to cases)."""
    links, case, study_case = _T("identity_link"), _T("pdc_case"), _T("pdc_study_case")
    study, pdc_file = _T("pdc_study"), _T("pdc_file")
    external = select(links.c.external_id).where(links.c.patient_id == pid, links.c.commons == "pdc")
    out = []
    for c_row, pdc_case in pairs("pdc_case", cast(case.c.case_id, Text).in_(external), order=["case_id"]):
        in_study = select(study_case.c.study_row_id).where(
            study_case.c.case_row_id == c_row["id"], live(study_case)
        )
        studies = []
        for s_row, rec in pairs("pdc_study", study.c.id.in_(in_study), order=["pdc_study_id"]):
            counts = conn.execute(
                select(pdc_file.c.data_category, pdc_file.c.file_type, func.count())
                .where(pdc_file.c.study_row_id == s_row["id"], live(pdc_file))
                .group_by(pdc_file.c.data_category, pdc_file.c.file_type)
                .order_by(pdc_file.c.data_category, pdc_file.c.file_type)
            ).all()
            rec["files"] = {
                "count": sum(int(n) for _, _, n in counts),
                "by_type": [{"data_category": c, "file_type": t, "count": int(n)} for c, t, n in counts],
            }
            studies.append(rec)
        pdc_case["studies"] = studies
        out.append(pdc_case)
    return out
