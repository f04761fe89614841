"""Runs: harvest, link, embed and export runs you may see, with status, counts, timings and the reasons of
anything quarantined or failed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from oncograph_ui import session
from oncograph_ui.client import Run


def _seconds(run: Run) -> float | None:
    if not run.get("finished_at"):
        return None
    start = dt.datetime.fromisoformat(run["started_at"])
    end = dt.datetime.fromisoformat(str(run["finished_at"]))
    return round((end - start).total_seconds(), 1)


def _counts(counts: dict[str, Any]) -> str:
    parts = []
    for key, value in counts.items():
        if isinstance(value, int | float):
            parts.append(f"{key} {value}")
        elif isinstance(value, dict):
            total = sum(v for v in value.values() if isinstance(v, int | float))
            parts.append(f"{key} {total}")
    return ", ".join(parts[:8])


def _quarantine(counts: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("quarantined", "quarantine", "failures"):
        value = counts.get(key)
        if isinstance(value, list):
            return [v if isinstance(v, dict) else {"reason": str(v)} for v in value]
    return []


def render() -> None:
    api = session.client()
    st.title("Runs")
    runs = session.call("list the runs", lambda: api.runs(limit=200))
    if runs is None:
        return
    if not runs:
        st.info("No runs you may see yet.")
        return
    kinds = sorted({r["transform"] for r in runs})
    chosen = st.multiselect("Kinds", kinds, placeholder="all kinds")
    shown = [r for r in runs if not chosen or r["transform"] in chosen]
    frame = pd.DataFrame(
        [
            {
                "id": r["id"],
                "kind": r["transform"],
                "status": r["status"],
                "started": r["started_at"][:19].replace("T", " "),
                "seconds": _seconds(r),
                "release": r.get("source_release"),
                "counts": _counts(r.get("counts") or {}),
                "error": r.get("error"),
            }
            for r in shown
        ]
    )
    st.dataframe(frame, hide_index=True)
    run_id = st.selectbox("Details of run", [r["id"] for r in shown], key="run_detail")
    run = next((r for r in shown if r["id"] == run_id), None)
    if run is None:
        return
    st.subheader(f"Run {run['id']} · {run['transform']} · {run['status']}")
    if run.get("error"):
        st.error(run["error"])
    held = _quarantine(run.get("counts") or {})
    if held:
        st.markdown(f"**Quarantined or failed** ({len(held)})")
        st.dataframe(pd.DataFrame(held), hide_index=True)
    left, right = st.columns(2)
    left.markdown("**Counts**")
    left.json(run.get("counts") or {})
    right.markdown("**Parameters**")
    right.json(run.get("parameters") or {})
