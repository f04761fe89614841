"""Export: choose a cohort and the dataset's options, start the export job, follow its progress, then read
the manifest's summary, download the small files and copy a snippet that loads the dataset.

The destination is the API server's export root (a folder or ``s3://`` prefix its operator configured),
under the caller's own folder: clients never choose server paths. The page shows where the export went.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from oncograph_ui import links, session
from oncograph_ui.client import ApiClient, Cohort, Export

STRATIFY = ["project_id", "program", "primary_site", "disease_type", "sex", "race", "ethnicity", "vital_status",
            "stage", "os_event"]  # fmt: skip
"""The fields the API's export may stratify splits by (ExportRequest.split_by; the API validates)."""
DOWNLOADS = [
    ("manifest.json", "manifest"),
    ("croissant.json", "Croissant metadata"),
    ("gdc_manifest.txt", "gdc-client manifest"),
    ("idc_manifest.s5cmd", "s5cmd manifest (IDC)"),
]
DONE = ("succeeded", "failed", "abandoned", "superseded")


def snippet(destination: str, *, tiles_model: str | None = None) -> str:
    """Python that loads the export for training (PyTorch and Hugging Face)."""
    lines = [
        "from oncograph.ml import OncoDataset  # pip install 'oncograph[ml]'",
        "",
        f'train = OncoDataset("{destination}", split="train")  # clinical features, embeddings, masks',
        'print(len(train), train[0]["case_id"])',
    ]
    if tiles_model:
        lines.append(
            f'bags = OncoDataset("{destination}", tiles="{tiles_model}", bag="slide")  # MIL: one slide per item'
        )
    lines += [
        "",
        "import datasets  # Hugging Face",
        f'patients = datasets.load_dataset("parquet", data_files={{"patients": "{destination}/patients.parquet"}})["patients"]',
    ]
    return "\n".join(lines) + "\n"


def _form(api: ApiClient, cohorts: list[Cohort], chosen: int | None) -> None:
    by_id = {c["id"]: c for c in cohorts}
    ids = list(by_id)
    with st.form("export_form"):
        cohort_id = st.selectbox(
            "Cohort", ids, index=ids.index(chosen) if chosen in by_id else 0,
            format_func=lambda i: f"{i}: {by_id[i]['name']} ({by_id[i]['size']} patients)",
        )  # fmt: skip
        name = st.text_input("Dataset name (letters, digits, . _ -)", placeholder="default: export-<id>")
        cols = st.columns(3)
        train = cols[0].number_input("train", 0.0, 1.0, 0.7, 0.05)
        val = cols[1].number_input("validation", 0.0, 1.0, 0.15, 0.05)
        test = cols[2].number_input("test", 0.0, 1.0, 0.15, 0.05)
        split_by = st.multiselect(
            "Stratify the patient-level split by", STRATIFY, ["project_id", "vital_status"]
        )
        seed = st.number_input("Split seed (the same seed gives the same split)", 0, 2**31 - 1, 0)
        tiles = st.checkbox("Include per-tile slide features (TRIDENT .h5 + tile Parquet) for MIL training")
        overwrite = st.checkbox("Replace my earlier export of the same name")
        st.caption(
            "Every export ships the clinical, biospecimen, file, imaging and proteomics tables with the cohort's "
            "pooled embeddings, patient-level splits, Croissant and download manifests."
        )
        submitted = st.form_submit_button("Start the export", type="primary")
    if not submitted:
        return
    if abs(train + val + test - 1.0) > 1e-6:
        st.error(f"The split fractions sum to {train + val + test:.2f}; they must sum to 1.")
        return
    body: dict[str, Any] = {
        "ratios": [train, val, test], "split_by": split_by, "seed": int(seed), "tiles": tiles,
        "overwrite": overwrite, **({"name": name.strip()} if name.strip() else {}),
    }  # fmt: skip
    started = session.call("start the export", lambda: api.start_export(int(cohort_id), body))
    if started is not None:
        st.query_params["export"] = str(started["id"])
        st.rerun()


def _summary(api: ApiClient, job: Export) -> None:
    manifest = job["manifest"] or {}
    st.success(f"Export {job['id']} is published at `{job['destination']}`.")
    files = manifest.get("files") or []
    tables = [f for f in files if f.get("rows") is not None]
    if tables:
        st.dataframe(
            pd.DataFrame(
                [{"file": f["path"], "rows": f.get("rows"), "bytes": f.get("size")} for f in tables]
            ),
            hide_index=True,
        )
    splits = manifest.get("splits") or {}
    if isinstance(splits, dict) and splits:
        st.write(
            "Patients per split: " + ", ".join(f"{k} {v}" for k, v in splits.items() if isinstance(v, int))
        )
    cols = st.columns(len(DOWNLOADS))
    present = {f.get("path") for f in files} | {"manifest.json"}
    for col, (file, label) in zip(cols, DOWNLOADS, strict=True):
        if file not in present:
            continue
        data = session.call(f"download {file}", partial(api.export_file, job["id"], file))
        if data is not None:
            col.download_button(label, data, file_name=file, key=f"dl:{job['id']}:{file}")
    tiles = [f["path"].split("/")[1] for f in files if str(f.get("path", "")).startswith("tiles/")]
    st.code(snippet(job["destination"], tiles_model=tiles[0] if tiles else None), language="python")


def _progress(api: ApiClient, export_id: int) -> None:
    @st.fragment(run_every=1.0)
    def follow() -> None:
        job = session.call("read the export's status", lambda: api.export(export_id))
        if job is None:
            return
        progress = job["progress"] or {}
        done, total = progress.get("done"), progress.get("total")
        if job["status"] in ("queued", "running"):
            fraction = (done / total) if isinstance(done, int) and isinstance(total, int) and total else 0.0
            st.progress(
                min(1.0, fraction), text=f"{job['status']}: {progress.get('stage') or 'waiting for a worker'}"
            )
            return
        if job["status"] == "succeeded":
            _summary(api, job)
        else:
            st.error(f"Export {job['id']} {job['status']}: {job['error'] or 'no reason recorded'}")
        st.session_state[f"export_done:{export_id}"] = True

    if st.session_state.get(f"export_done:{export_id}"):
        job = session.call("read the export", lambda: api.export(export_id))
        if job is not None and job["status"] == "succeeded":
            _summary(api, job)
        elif job is not None:
            st.error(f"Export {job['id']} {job['status']}: {job['error'] or 'no reason recorded'}")
        return
    follow()


def render() -> None:
    api = session.client()
    st.title("Export a cohort")
    cohorts = session.call("list your cohorts", api.cohorts)
    if cohorts is None:
        return
    wanted = st.query_params.get("export")
    if wanted and wanted.isdigit():
        _progress(api, int(wanted))
        session.page_link("export", "Start another export", ":material/add:")
        return
    if not cohorts:
        st.info("Save a cohort first (cohort builder or My cohorts), then export it here.")
        return
    raw = st.query_params.get("cohort")
    _form(api, list(cohorts), int(raw) if raw and raw.isdigit() else None)
    earlier = session.call("list your exports", api.exports) or []
    if earlier:
        st.subheader("Your exports")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "export": links.export_page(export_id=e["id"]),
                        "cohort": e["cohort_id"],
                        "status": e["status"],
                        "destination": e["destination"],
                        "created": e["created_at"][:19].replace("T", " "),
                    }
                    for e in earlier
                ]
            ),
            hide_index=True,
            column_config={"export": st.column_config.LinkColumn("open", display_text=r"export=(\d+)$")},
        )
