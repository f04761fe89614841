"""One patient (``?id=`` a case UUID or barcode): the graph around it — diagnoses with treatments, follow-ups,
exposures, samples, files, slides, imaging studies and series, proteomics, identity links — each record with
its lineage (source document, release, run); deep links to IDC's viewers and the GDC portal; thumbnails of
locally embedded slides (rendered by the API); and similar patients by embedding."""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from oncograph_ui import links, session
from oncograph_ui.client import ApiClient

LINEAGE = "lineage"


def _flat(records: list[dict[str, Any]], drop: tuple[str, ...] = ()) -> pd.DataFrame:
    """Records as a table: nested lists left out, lineage as "source · release · run"."""
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k not in drop and not isinstance(v, list | dict)}
        lin = r.get(LINEAGE) or {}
        row["lineage"] = " · ".join(
            str(x) for x in (lin.get("source"), lin.get("release"), f"run {lin['run_id']}" if lin.get("run_id") else None)
            if x
        )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def _table(title: str, records: list[dict[str, Any]], **kwargs: Any) -> None:
    if not records:
        return
    st.markdown(f"**{title}** ({len(records)})")
    st.dataframe(_flat(records), hide_index=True, **kwargs)


def _clinical(detail: dict[str, Any]) -> None:
    diagnoses = detail.get("diagnoses") or []
    _table("Diagnoses", diagnoses)
    treatments = [t for d in diagnoses for t in d.get("treatments") or []]
    _table("Treatments", treatments + (detail.get("treatments_without_diagnosis") or []))
    _table("Follow-ups", detail.get("follow_ups") or [])
    _table("Exposures", detail.get("exposures") or [])
    _table("Family histories", detail.get("family_histories") or [])


def _files(detail: dict[str, Any]) -> None:
    _table("Samples", detail.get("samples") or [])
    files = detail.get("files") or []
    if files:
        frame = _flat(files)
        if "file_id" in frame:
            frame.insert(0, "GDC portal", [links.gdc_file_url(f) for f in frame["file_id"]])
        st.markdown(f"**Files** ({len(files)})")
        st.dataframe(
            frame, hide_index=True,
            column_config={"GDC portal": st.column_config.LinkColumn(display_text="open")},
        )  # fmt: skip


def _imaging(detail: dict[str, Any]) -> None:
    for idc_patient in detail.get("imaging") or []:
        st.markdown(
            f"**IDC patient {idc_patient.get('patient_id')}** · collection `{idc_patient.get('collection_id')}`"
        )
        for study in idc_patient.get("studies") or []:
            study_uid = study.get("study_instance_uid", "")
            st.markdown(
                f"Study {study.get('study_date') or ''} · {', '.join(study.get('modalities') or [])} · "
                f"{study.get('series_count', 0)} series · [open in IDC's viewer]({links.ohif_url(study_uid)})"
            )
            rows = [
                {
                    "viewer": links.series_viewer_url(
                        s.get("modality"), study_uid, s.get("series_instance_uid", "")
                    ),
                    "modality": s.get("modality"),
                    "description": s.get("series_description"),
                    "instances": s.get("instance_count"),
                    "body part": s.get("body_part_examined"),
                    "series UID": s.get("series_instance_uid"),
                }
                for s in study.get("series") or []
            ]
            if rows:
                st.dataframe(
                    pd.DataFrame(rows), hide_index=True,
                    column_config={"viewer": st.column_config.LinkColumn(display_text="view")},
                )  # fmt: skip
    for case in detail.get("proteomics") or []:
        _table(
            f"PDC case {case.get('case_submitter_id') or case.get('case_id') or ''}",
            case.get("studies") or [],
        )


def _links(detail: dict[str, Any]) -> None:
    found = detail.get("identity_links") or []
    if not found:
        st.caption("No identity links to other commons.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "commons": link.get("commons"),
                    "namespace": link.get("namespace"),
                    "id": link.get("external_id"),
                    "how": link.get("method") or link.get("evidence"),
                    "confidence": link.get("confidence"),
                }
                for link in found
            ]
        ),
        hide_index=True,
    )


def _embeddings(api: ApiClient, case: str, detail: dict[str, Any]) -> None:
    found = detail.get("embeddings") or []
    if not found:
        st.caption("No embeddings for this patient yet (`oncograph embed slides|scans|text`).")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": e.get("model"),
                    "modality": e.get("modality"),
                    "object": e.get("object_id"),
                    "source": e.get("source_name") or e.get("source_uri"),
                    "tiles": e.get("tiles"),
                    "dim": e.get("dim"),
                    "attached by": e.get("attached_by"),
                }
                for e in found
            ]
        ),
        hide_index=True,
    )
    slides = [e for e in found if e.get("thumbnail")]
    if slides:
        cols = st.columns(min(3, len(slides)))
        for col, e in zip(cols, slides, strict=False):
            embedding_id = int(e["id"])
            png = session.call("load the slide thumbnail", partial(api.thumbnail, embedding_id, 320))
            if png is not None:
                col.image(png, caption=f"{e.get('source_name')} · {e.get('tiles')} tiles")
    models = sorted({e["model"] for e in found})
    model = st.selectbox("Similar patients by", models, key="similar_model")
    near = session.call("find similar patients", lambda: api.similar(case, model, k=5))
    if near:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "patient": links.patient_page(n["submitter_id"] or n["case_id"]),
                        "project": n["project_id"],
                        "similarity": round(n["similarity"], 4),
                        "nearest object": n["nearest_object"],
                    }
                    for n in near
                ]
            ),
            hide_index=True,
            column_config={"patient": st.column_config.LinkColumn(display_text=r"id=(.*)$")},
        )


def _lineage(api: ApiClient, case: str) -> None:
    found = session.call("load the lineage", lambda: api.lineage(case))
    if found is None:
        return
    docs = found.get("documents") or []
    if docs:
        st.markdown("**Source documents**")
        st.dataframe(pd.DataFrame(docs), hide_index=True)
    records = found.get("records") or []
    if records:
        st.markdown("**Records and the run that wrote them**")
        st.dataframe(pd.DataFrame(records), hide_index=True)


def render() -> None:
    api = session.client()
    st.title("Patient")
    typed = st.text_input("Case UUID or barcode", value=st.query_params.get("id", ""), key="patient_id")
    case = typed.strip()
    if not case:
        st.caption("Type a case, or open one from the builder's or a cohort's member list.")
        return
    if case != st.query_params.get("id"):
        st.query_params["id"] = case
    detail = session.call("load the patient", lambda: api.patient(case))
    if detail is None:
        return
    patient = detail.get("patient") or {}
    project = detail.get("project") or {}
    demographic = detail.get("demographic") or {}
    st.header(f"{patient.get('submitter_id') or case} · {project.get('project_id') or ''}")
    cols = st.columns(4)
    cols[0].metric("Primary site", patient.get("primary_site") or "—")
    cols[1].metric("Disease type", (patient.get("disease_type") or "—")[:40])
    cols[2].metric("Sex", demographic.get("sex") or demographic.get("gender") or "—")
    cols[3].metric("Vital status", demographic.get("vital_status") or "—")
    if patient.get("case_id"):
        st.markdown(f"[Open in the GDC Data Portal]({links.gdc_case_url(patient['case_id'])})")
    tabs = st.tabs(["Clinical", "Samples & files", "Imaging & proteomics", "Links", "Embeddings", "Lineage"])
    with tabs[0]:
        _clinical(detail)
    with tabs[1]:
        _files(detail)
    with tabs[2]:
        _imaging(detail)
    with tabs[3]:
        _links(detail)
    with tabs[4]:
        _embeddings(api, case, detail)
    with tabs[5]:
        _lineage(api, case)
