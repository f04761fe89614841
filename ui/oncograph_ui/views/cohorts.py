"""My cohorts: the saved cohorts with version, pinned releases and member hash; one cohort's page (its own
URL, ``?cohort=ID``) with refresh-and-diff, members and survival; set operations over any number of cohorts;
and the import of a case list (UUIDs or barcodes, as the GDC portal imports a case set)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from oncograph_ui import charts, filters, links, session
from oncograph_ui.client import ApiClient, Cohort

SET_OPS = {
    "union": "union (in any)",
    "intersection": "intersection (in all)",
    "difference": "first minus the rest",
}


def _releases(cohort: Cohort) -> str:
    names = [
        r.get("release") or r.get("name") or str(r) if isinstance(r, dict) else str(r)
        for r in cohort["releases"]
    ]
    return ", ".join(names) or "none"


def _table(cohorts: list[Cohort]) -> None:
    if not cohorts:
        st.info(
            "No saved cohorts yet: build one on the cohort builder page and save it, or import a case list."
        )
        return
    frame = pd.DataFrame(
        [
            {
                "cohort": links.cohort_page(c["id"]),
                "id": c["id"],
                "name": c["name"],
                "patients": c["size"],
                "version": c["versions"],
                "releases": _releases(c),
                "member hash": c["member_hash"][:12],
                "owner": c["owner"],
                "shared": c["shared"],
                "created": c["created_at"][:19].replace("T", " "),
            }
            for c in cohorts
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        column_config={"cohort": st.column_config.LinkColumn("open", display_text=r"cohort=(\d+)$")},
    )


def _refresh(api: ApiClient, cohort: Cohort) -> None:
    if st.button("Refresh against the current graph", icon=":material/refresh:", key="refresh"):
        found = session.call("refresh the cohort", lambda: api.refresh(cohort["id"]))
        if found is not None:
            diff = found["diff"]
            st.session_state["last_diff"] = (cohort["id"], diff)
    last = st.session_state.get("last_diff")
    if last and last[0] == cohort["id"]:
        diff = last[1]
        st.success(
            f"+{diff['added_count']} / −{diff['removed_count']} patients since version {diff['from_version']} "
            f"(now version {diff['to_version']}, {diff['unchanged']} unchanged)"
        )
        if diff["added"] or diff["removed"]:
            st.dataframe(
                pd.DataFrame(
                    [{"change": "added", **m} for m in diff["added"]]
                    + [{"change": "removed", **m} for m in diff["removed"]]
                ),
                hide_index=True,
            )


def _detail(api: ApiClient, cohort_id: int) -> None:
    cohort = session.call("load the cohort", lambda: api.cohort(cohort_id))
    if cohort is None:
        return
    st.header(f"{cohort['name']}  ·  cohort {cohort['id']}")
    if cohort["description"]:
        st.write(cohort["description"])
    cols = st.columns(4)
    cols[0].metric("Patients", cohort["size"])
    cols[1].metric("Version", cohort["versions"])
    cols[2].metric("Pinned releases", len(cohort["releases"]))
    cols[3].metric("Member hash", cohort["member_hash"][:10])
    st.caption(f"Releases: {_releases(cohort)}. Owner {cohort['owner']}; {cohort['kind']} cohort.")
    definition = cohort.get("definition") or {}
    if definition.get("filters") is not None:
        session.page_link(
            "builder", "Open its filter in the builder", ":material/tune:",
            filter=filters.to_query(definition["filters"]),
        )  # fmt: skip
    session.page_link("export", "Export this cohort", ":material/download:", cohort=cohort["id"])
    _refresh(api, cohort)
    members = session.call("list the members", lambda: api.members(cohort_id, limit=50))
    if members is not None and members["data"]:
        st.caption(
            f"The first {len(members['data'])} of {members['total']} members (version {members['version']})"
        )
        frame = pd.DataFrame(members["data"])
        frame.insert(
            0, "page", [links.patient_page(m["submitter_id"] or m["case_id"]) for m in members["data"]]
        )
        st.dataframe(
            frame, hide_index=True,
            column_config={"page": st.column_config.LinkColumn("patient", display_text=r"id=(.*)$")},
        )  # fmt: skip
    found = session.call("compute survival", lambda: api.cohort_survival(cohort_id))
    if found is not None and any(g["curve"] for g in found["result"]["groups"]):
        st.altair_chart(charts.km_chart(found["result"]), width="stretch", height=380)


def _set_operations(api: ApiClient, cohorts: list[Cohort]) -> None:
    by_id = {c["id"]: c for c in cohorts}
    with st.form("set_ops"):
        chosen = st.multiselect(
            "Cohorts (in order: the first is the base of a difference)", list(by_id),
            format_func=lambda i: f"{i}: {by_id[i]['name']} ({by_id[i]['size']})",
        )  # fmt: skip
        op = st.radio("Operation", list(SET_OPS), format_func=SET_OPS.__getitem__, horizontal=True)
        name = st.text_input("Name of the new cohort", key="set_op_name")
        submitted = st.form_submit_button("Combine")
    if submitted:
        if len(chosen) < 2 or not name.strip():
            st.error("Choose two or more cohorts and a name.")
            return
        made = session.call("combine the cohorts", lambda: api.set_operation(op, chosen, name.strip()))
        if made is not None:
            st.success(f"Saved cohort {made['id']} “{made['name']}”: {made['size']} patients.")
            session.page_link("cohorts", "Open it", ":material/group:", cohort=made["id"])


def _import(api: ApiClient) -> None:
    with st.form("import_cases"):
        name = st.text_input("Name", key="import_name")
        pasted = st.text_area("Case UUIDs or barcodes (one per line, or separated by commas)", height=120)
        uploaded = st.file_uploader("…or a file of them (TSV/CSV/TXT)", type=["txt", "tsv", "csv"])
        submitted = st.form_submit_button("Import")
    if not submitted:
        return
    text = pasted + "\n" + (uploaded.getvalue().decode("utf-8", errors="replace") if uploaded else "")
    ids = filters.parse_case_list(text)
    if not ids or not name.strip():
        st.error("Give a name and at least one case UUID or barcode.")
        return
    made = session.call("import the cases", lambda: api.create_cohort(name.strip(), ids=ids))
    if made is not None:
        unresolved: list[Any] = made["latest"].get("details", {}).get("unresolved") or []
        st.success(f"Saved cohort {made['id']}: {made['size']} of {len(ids)} cases found.")
        if unresolved:
            st.warning(f"{len(unresolved)} not found: {', '.join(map(str, unresolved[:20]))}")
        session.page_link("cohorts", "Open it", ":material/group:", cohort=made["id"])


def render() -> None:
    api = session.client()
    wanted = st.query_params.get("cohort")
    if wanted:
        if not wanted.isdigit():
            st.error(f"“{wanted}” is not a cohort id.")
        else:
            _detail(api, int(wanted))
        st.divider()
    st.title("My cohorts")
    cohorts = session.call("list your cohorts", api.cohorts) or []
    _table(cohorts)
    left, right = st.columns(2)
    with left:
        st.subheader("Combine cohorts")
        _set_operations(api, cohorts)
    with right:
        st.subheader("Import a case list")
        _import(api)
