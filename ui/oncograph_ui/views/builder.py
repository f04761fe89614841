"""The cohort builder: facet filters with live counts, the cohort's size, charts, modality intersections,
Kaplan–Meier curves, a member preview, the equivalent GDC filter (editable) and saving.

The page URL's ``filter`` parameter is the selection (so a link reopens it); every widget is set from it on
each run and writes it back when changed. A facet's counts are those of the selection *without* that facet's
own choice (as in the GDC portal), so the other values of a field stay visible and countable.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import streamlit as st

from oncograph_ui import charts, filters, links, session
from oncograph_ui.client import ApiClient, ApiError, Facets, FieldInfo

FACETS: list[tuple[str, str]] = [
    ("project.project_id", "Project"),
    ("primary_site", "Primary site"),
    ("disease_type", "Disease type"),
    ("diagnoses.stage", "Stage"),
    ("demographic.sex", "Sex"),
    ("demographic.vital_status", "Vital status"),
    ("modalities", "Modalities"),
    ("idc.modality", "IDC modality"),
    ("idc.collection_id", "IDC collection"),
    ("embeddings.model", "Embeddings"),
]
AGE = "diagnoses.age_at_diagnosis"
AGE_MAX_YEARS = 100
CHARTED = ("project.project_id", "primary_site", "diagnoses.stage", "demographic.vital_status")
SPLITS = [None, "demographic.vital_status", "demographic.sex", "diagnoses.stage", "project.project_id"]
EXTRA = "builder_extra_facets"


def _current() -> tuple[dict[str, Any] | None, filters.Selection | None]:
    try:
        current = filters.from_query(st.query_params.get("filter"))
    except filters.FilterTextError as exc:
        st.error(f"The link's filter cannot be read ({exc}); starting from everyone.")
        del st.query_params["filter"]
        current = None
    return current, filters.from_filter(current)


def _set_filter(value: dict[str, Any] | None) -> None:
    encoded = filters.to_query(value)
    if encoded is None:
        st.query_params.pop("filter", None)
    else:
        st.query_params["filter"] = encoded


def _years(days: float | None, default: int) -> int:
    return default if days is None else max(0, min(AGE_MAX_YEARS, math.floor(days / charts.DAYS_PER_YEAR)))


def _age_range(selection: filters.Selection) -> tuple[int, int]:
    lo, hi = selection.ranges.get(AGE, (None, None))
    return _years(lo, 0), _years(hi, AGE_MAX_YEARS)


def _on_terms(name: str) -> None:
    _, selection = _current()
    selection = selection or filters.Selection()
    selection.terms[name] = list(st.session_state[f"facet:{name}"])
    _set_filter(filters.to_filter(selection))


def _on_age() -> None:
    _, selection = _current()
    selection = selection or filters.Selection()
    lo, hi = st.session_state["facet:age"]
    selection.ranges[AGE] = (
        None if lo <= 0 else round(lo * charts.DAYS_PER_YEAR),
        None if hi >= AGE_MAX_YEARS else round((hi + 1) * charts.DAYS_PER_YEAR) - 1,
    )
    _set_filter(filters.to_filter(selection))


def _facet_counts(
    api: ApiClient, selection: filters.Selection, names: list[str], main: Facets
) -> dict[str, dict[str, Any]]:
    """Per field: its facet under the selection without its own clause (one call per field with a choice)."""
    out = {f["field"]: dict(f) for f in main["facets"]}
    for name in names:
        if selection.terms.get(name):
            other = api.facets(filters.to_filter(selection.without(name)), [name], size=100)
            out[name] = dict(other["facets"][0])
    return out


def _facet_widget(name: str, label: str, facet: dict[str, Any], chosen: list[Any], disabled: bool) -> None:
    counts = {b["key"]: b["count"] for b in facet.get("buckets", [])}
    options = list(counts) + [v for v in chosen if v not in counts]
    key = f"facet:{name}"
    if st.session_state.get(key) != chosen:
        st.session_state[key] = chosen
    st.multiselect(
        label, options, key=key, on_change=_on_terms, args=(name,), disabled=disabled,
        format_func=lambda v: f"{v}  ({counts.get(v, 0)})", placeholder="any",
    )  # fmt: skip


def _sidebar(api: ApiClient, selection: filters.Selection | None, counts: dict[str, dict[str, Any]],
             fields: list[FieldInfo]) -> None:  # fmt: skip
    editable = selection is not None
    selection = selection or filters.Selection()
    st.subheader("Filters")
    if not editable:
        st.info("The current filter has a shape the facets cannot show: edit it under Advanced.")
    for name, label in _facet_names(selection, fields):
        _facet_widget(name, label, counts.get(name, {}), list(selection.terms.get(name, [])), not editable)
    lo, hi = _age_range(selection)
    if st.session_state.get("facet:age") != (lo, hi):
        st.session_state["facet:age"] = (lo, hi)
    st.slider("Age at diagnosis (years)", 0, AGE_MAX_YEARS, key="facet:age", on_change=_on_age,
              disabled=not editable)  # fmt: skip
    choices = {f["field"]: f for f in fields if f["facet"] == "terms" and not f["identifier"]}
    shown = {n for n, _ in _facet_names(selection, fields)}
    extra = st.selectbox(
        "Add any field", [None, *sorted(set(choices) - shown)], key="builder_add_field",
        format_func=lambda v: "choose a field…" if v is None else v,
    )  # fmt: skip
    if extra and extra not in st.session_state.setdefault(EXTRA, []):
        st.session_state[EXTRA].append(extra)
        st.rerun()
    if not selection.is_empty() and st.button("Clear all filters", icon=":material/filter_alt_off:"):
        _set_filter(None)
        st.rerun()


def _facet_names(selection: filters.Selection, fields: list[FieldInfo]) -> list[tuple[str, str]]:
    names = list(FACETS)
    known = {n for n, _ in names}
    for name in [*st.session_state.get(EXTRA, []), *selection.terms]:
        if name not in known:
            names.append((name, name))
            known.add(name)
    return names


def _overview(counts: dict[str, dict[str, Any]], main: Facets) -> None:
    cols = st.columns(2)
    labels = dict(FACETS)
    for i, name in enumerate(CHARTED):
        facet = next((f for f in main["facets"] if f["field"] == name), None)
        if facet and facet.get("buckets"):
            cols[i % 2].altair_chart(
                charts.bar_chart(dict(facet), labels[name]),
                width="stretch",
                height=charts.bar_height(dict(facet)),
            )
        elif facet:
            cols[i % 2].caption(f"{labels[name]}: no values recorded for this selection")
    age = next((f for f in main["facets"] if f["field"] == AGE), None)
    if age:
        st.altair_chart(charts.histogram_chart(dict(age), "Age at diagnosis"), width="stretch")


def _modalities(main: Facets) -> None:
    matrix = main.get("modality_matrix")
    if not matrix:
        return
    per = pd.DataFrame(
        [{"modality": k, "patients": v} for k, v in sorted(matrix["modalities"].items())],
        columns=["modality", "patients"],
    )
    st.dataframe(per, hide_index=True, width="content")
    if any(c.get("modalities") for c in matrix["combinations"]):
        st.altair_chart(charts.upset_chart(dict(matrix)), width="stretch")
    else:
        st.caption("No patient of this selection has any modality.")


def _survival(api: ApiClient, current: dict[str, Any] | None) -> None:
    split = st.selectbox(
        "Split by",
        SPLITS,
        key="builder_split",
        format_func=lambda v: "nothing (one curve)" if v is None else v,
    )
    found = session.call("compute survival", lambda: api.survival(current, split))
    if found is None:
        return
    result = found["result"]
    if not result["groups"] or not any(g["curve"] for g in result["groups"]):
        st.info("No patient of this selection has survival data.")
        return
    st.altair_chart(charts.km_chart(result), width="stretch", height=380)
    st.caption("Number at risk")
    st.dataframe(charts.at_risk_table(result), width="stretch")
    p = result.get("logrank_p_value")
    if p is not None:
        st.markdown(f"Log-rank test across {len(result['logrank_groups'])} groups: **p = {p:.3g}**")
    if found.get("omitted_groups"):
        st.caption(f"{found['omitted_groups']} smaller groups are not shown.")
    with st.expander("How survival is computed"):
        st.write(result["rules"])


def _members(api: ApiClient, current: dict[str, Any] | None) -> None:
    page = session.call("list the members", lambda: api.patients(current, limit=25))
    if page is None:
        return
    rows = [{**p, "page": links.patient_page(p["submitter_id"] or p["case_id"])} for p in page["data"]]
    frame = pd.DataFrame(rows)
    if frame.empty:
        st.info("No patient matches.")
        return
    st.caption(f"The first {len(rows)} of {page['total']} patients")
    st.dataframe(
        frame[["page", "submitter_id", "project_id", "primary_site", "disease_type", "sex", "vital_status"]],
        hide_index=True,
        column_config={"page": st.column_config.LinkColumn("patient", display_text=r"id=(.*)$")},
    )


def _advanced(current: dict[str, Any] | None) -> None:
    st.caption(
        "The equivalent GDC filter. Edit it, or paste a filter copied from the GDC Data Portal, then apply."
    )
    text = st.text_area(
        "GDC filter (JSON)", json.dumps(current, indent=2) if current else "", height=220, key="builder_json"
    )
    if st.button("Apply filter", key="builder_apply"):
        try:
            parsed = filters.parse_filter_text(text)
        except filters.FilterTextError as exc:
            st.error(str(exc))
            return
        try:
            session.client().facets(parsed, [])
        except ApiError as exc:
            session.show_error(exc, "use this filter")
            return
        _set_filter(parsed)
        st.rerun()


def _save(api: ApiClient, current: dict[str, Any] | None, total: Any) -> None:
    with st.form("save_cohort", clear_on_submit=False):
        name = st.text_input("Name", max_chars=200)
        description = st.text_area("Description", max_chars=2000, height=80)
        submitted = st.form_submit_button(f"Save {total} patients as a cohort", type="primary")
    if submitted:
        if not name.strip():
            st.error("Give the cohort a name.")
            return
        made = session.call(
            "save the cohort",
            lambda: api.create_cohort(name.strip(), description=description, filters=current),
        )
        if made is not None:
            st.success(
                f"Saved cohort {made['id']} “{made['name']}”: {made['size']} patients, member hash "
                f"`{made['member_hash'][:12]}…`, pinned to {len(made['releases'])} releases."
            )
            session.page_link("cohorts", "Open the saved cohort", ":material/group:", cohort=made["id"])


def render() -> None:
    api = session.client()
    current, selection = _current()
    fields = session.call("load the fields", api.fields) or []
    names = [n for n, _ in _facet_names(selection or filters.Selection(), fields)]
    try:
        with st.spinner("Counting…"):
            main = api.facets(current, [*names, AGE], modality_matrix=True, size=100,
                              intervals={AGE: 10 * charts.DAYS_PER_YEAR})  # fmt: skip
            counts = _facet_counts(api, selection or filters.Selection(), names, main)
    except ApiError as exc:
        session.show_error(exc, "count patients")
        if current is not None and st.button("Start from everyone"):
            _set_filter(None)
            st.rerun()
        return
    with st.sidebar:
        _sidebar(api, selection, counts, fields)
    st.title("Cohort builder")
    st.metric("Patients in this selection", main["total"])
    if current is not None:
        st.caption("This page's address holds the selection: share it to share the cohort you see.")
    tabs = st.tabs(["Overview", "Modalities", "Survival", "Members", "Advanced", "Save"])
    with tabs[0]:
        _overview(counts, main)
    with tabs[1]:
        _modalities(main)
    with tabs[2]:
        _survival(api, current)
    with tabs[3]:
        _members(api, current)
    with tabs[4]:
        _advanced(current)
    with tabs[5]:
        _save(api, current, main["total"])
