"""Charts of API answers (Altair, which comes with Streamlit): facet bars, an age histogram, Kaplan–Meier
curves with their confidence bands and a number-at-risk table, and an UpSet-style view of which patients
have which modalities. Pure functions from JSON to charts and tables: no Streamlit, no HTTP."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

DAYS_PER_YEAR = 365.25


def count_value(count: Any) -> int:
    """A count as a number for plotting; a suppressed ``"<N>"`` plots as 0 (its label says ``<N>``)."""
    return count if isinstance(count, int) else 0


def terms_frame(facet: dict[str, Any]) -> pd.DataFrame:
    rows = [{"value": str(b["key"]), "patients": count_value(b["count"]), "label": str(b["count"])}
            for b in facet.get("buckets", [])]  # fmt: skip
    return pd.DataFrame(rows, columns=["value", "patients", "label"])


def bar_chart(facet: dict[str, Any], title: str, top: int = 12) -> alt.Chart:
    frame = terms_frame(facet).head(top)
    base = alt.Chart(frame, title=title).encode(
        y=alt.Y("value:N", sort="-x", title=None), x=alt.X("patients:Q", title="patients")
    )
    chart: alt.Chart = (
        base.mark_bar() + base.mark_text(align="left", dx=3).encode(text="label:N")
    ).properties(height=max(60, 22 * len(frame)))
    return chart


def bar_height(facet: dict[str, Any], top: int = 12) -> int:
    """Pixels for :func:`bar_chart`: room for its title and axis, and 26 px per bar."""
    return 110 + 26 * max(1, min(top, len(facet.get("buckets", []))))


def histogram_chart(facet: dict[str, Any], title: str, *, days_as_years: bool = True) -> alt.Chart:
    scale = DAYS_PER_YEAR if days_as_years else 1.0
    rows = [
        {"from": b["from"] / scale, "to": b["to"] / scale, "patients": count_value(b["count"])}
        for b in facet.get("buckets", [])
    ]
    frame = pd.DataFrame(rows, columns=["from", "to", "patients"])
    unit = "years" if days_as_years else ""
    chart: alt.Chart = (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(
            x=alt.X("from:Q", bin="binned", title=unit or None),
            x2="to:Q",
            y=alt.Y("patients:Q"),
            tooltip=["from:Q", "to:Q", "patients:Q"],
        )
        .properties(height=180)
    )
    return chart


def km_frame(result: dict[str, Any]) -> pd.DataFrame:
    """One row per curve step (time in years), starting each group at survival 1 on day 0."""
    rows = []
    for group in result.get("groups", []):
        name = f"{group['name']} (n={group['n']})"
        rows.append({"group": name, "years": 0.0, "survival": 1.0, "lower": 1.0, "upper": 1.0})
        for p in group.get("curve", []):
            rows.append(
                {
                    "group": name,
                    "years": p["time_days"] / DAYS_PER_YEAR,
                    "survival": p["survival"],
                    "lower": p["ci_lower"] if p["ci_lower"] is not None else p["survival"],
                    "upper": p["ci_upper"] if p["ci_upper"] is not None else p["survival"],
                }
            )
    return pd.DataFrame(rows, columns=["group", "years", "survival", "lower", "upper"])


def km_chart(result: dict[str, Any], title: str = "Overall survival") -> alt.LayerChart:
    frame = km_frame(result)
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("years:Q", title="years since the index date"), color=alt.Color("group:N", title=None)
    )
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(y="lower:Q", y2="upper:Q")
    line = base.mark_line(interpolate="step-after").encode(
        y=alt.Y("survival:Q", scale=alt.Scale(domain=[0, 1]), title="survival probability"),
        tooltip=["group:N", alt.Tooltip("years:Q", format=".2f"), alt.Tooltip("survival:Q", format=".3f")],
    )
    chart: alt.LayerChart = (band + line).properties(height=320)
    return chart


def at_risk_table(result: dict[str, Any], years: tuple[int, ...] = (0, 1, 2, 3, 5, 10)) -> pd.DataFrame:
    """Patients at risk per group at each of ``years`` (the number-at-risk table under a KM plot): those whose
    follow-up reaches that time, i.e. the at-risk count of the first step at or after it (0 past the end)."""
    table: dict[str, list[int]] = {}
    for group in result.get("groups", []):
        curve = group.get("curve", [])
        counts = []
        for y in years:
            day = y * DAYS_PER_YEAR
            if day <= 0:
                counts.append(int(group["n"]) - sum(group.get("excluded", {}).values()))
                continue
            later = [p for p in curve if p["time_days"] >= day]
            counts.append(int(later[0]["at_risk"]) if later else 0)
        table[f"{group['name']} (n={group['n']})"] = counts
    return pd.DataFrame(table, index=[f"{y} y" for y in years]).T


def upset_frames(matrix: dict[str, Any], top: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(bars, dots)``: patients per exact modality combination (most first) and the dot matrix under them."""
    combos = [c for c in matrix.get("combinations", []) if c.get("modalities")][:top]
    bars = pd.DataFrame(
        [
            {
                "combination": " + ".join(c["modalities"]),
                "patients": count_value(c["count"]),
                "label": str(c["count"]),
            }
            for c in combos
        ],
        columns=["combination", "patients", "label"],
    )
    modalities = sorted(matrix.get("modalities", {}))
    dots = pd.DataFrame(
        [
            {"combination": " + ".join(c["modalities"]), "modality": m, "has": m in c["modalities"]}
            for c in combos
            for m in modalities
        ],
        columns=["combination", "modality", "has"],
    )
    return bars, dots


def upset_chart(matrix: dict[str, Any], top: int = 12) -> alt.VConcatChart:
    bars, dots = upset_frames(matrix, top)
    order = list(bars["combination"])
    x = alt.X("combination:N", sort=order, axis=None)
    top_chart = (
        alt.Chart(bars, title="Patients per exact combination of modalities")
        .mark_bar()
        .encode(x=x, y=alt.Y("patients:Q"), tooltip=["combination:N", "label:N"])
        .properties(height=160)
    )
    dot_chart = (
        alt.Chart(dots)
        .mark_circle(size=90)
        .encode(
            x=x,
            y=alt.Y("modality:N", title=None),
            color=alt.condition("datum.has", alt.value("#1f4e79"), alt.value("#dddddd")),
        )
        .properties(height=22 * max(1, dots["modality"].nunique()))
    )
    return alt.vconcat(top_chart, dot_chart, spacing=2)


__all__ = [
    "at_risk_table",
    "bar_chart",
    "bar_height",
    "count_value",
    "histogram_chart",
    "km_chart",
    "km_frame",
    "terms_frame",
    "upset_chart",
    "upset_frames",
]
