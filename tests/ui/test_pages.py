"""Each page of the UI in Streamlit's AppTest, against the real API (``oncograph serve``) on a private copy
of the sample graph: what a page shows is checked against what the API itself answers."""

from __future__ import annotations

import json

import httpx
import pytest
from streamlit.testing.v1 import AppTest
from ui.conftest import APP, CHOL, UiStack

from oncograph_ui import filters
from oncograph_ui.session import KEY

pytestmark = pytest.mark.integration
PAGES = APP.parent / "screens"


def _page(name: str, stack: UiStack, **query: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)
    at.session_state[KEY] = stack.key
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def _api(stack: UiStack, method: str, path: str, **kwargs: object) -> dict:
    response = httpx.request(method, f"{stack.api_url}{path}", headers=stack.headers, timeout=60, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_login_refuses_a_bad_key_then_accepts_a_good_one(api_env: UiStack) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert at.title[0].value == "oncograph" and at.text_input[0].label == "API key"
    at.text_input[0].input("og_not-a-key")
    at.button[0].click().run()
    assert at.error and "log in" in at.error[0].value and "key" in at.error[0].value.lower()
    assert KEY not in at.session_state
    at.text_input[0].input(api_env.key)
    at.button[0].click().run()
    _no_errors(at)
    assert at.session_state[KEY] == api_env.key
    assert [t.value for t in at.title] == ["Cohort builder"]


def test_builder_counts_what_the_api_counts_and_keeps_the_selection_in_the_url(api_env: UiStack) -> None:
    total = _api(api_env, "POST", "/facets", json={})["total"]
    at = _page("builder", api_env)
    _no_errors(at)
    assert at.metric[0].value == str(total)
    # pick TCGA-CHOL in the project facet: the count becomes the API's, and the URL holds the filter
    project = next(m for m in at.multiselect if m.label == "Project")
    assert "TCGA-CHOL" in project.options[0] or any("TCGA-CHOL" in o for o in project.options)
    project.select("TCGA-CHOL").run()
    _no_errors(at)
    chol = _api(api_env, "POST", "/facets", json={"filters": CHOL})["total"]
    assert at.metric[0].value == str(chol) == "51"
    assert json.loads(at.query_params["filter"]) == CHOL
    # a link with that filter reopens the same selection
    again = _page("builder", api_env, filter=at.query_params["filter"])
    assert again.metric[0].value == "51"
    assert next(m for m in again.multiselect if m.label == "Project").value == ["TCGA-CHOL"]
    # the survival tab plots what POST /survival answers for the filter, with the number at risk under it
    split = "demographic.vital_status"
    again.selectbox(key="builder_split").set_value(split).run()
    _no_errors(again)
    km = _api(api_env, "POST", "/survival", json={"filters": CHOL, "group_by": split, "max_groups": 6})
    at_risk = next(df.value for df in again.dataframe if "0 y" in df.value.columns)
    assert list(at_risk["0 y"]) == [g["n"] - sum(g["excluded"].values()) for g in km["result"]["groups"]]
    p_value = km["result"]["logrank_p_value"]
    assert any(f"p = {p_value:.3g}" in m.value for m in again.markdown)
    # the advanced box shows the equivalent GDC filter
    assert json.loads(next(t for t in again.text_area if t.label == "GDC filter (JSON)").value) == CHOL


def test_builder_applies_a_pasted_portal_filter_and_explains_a_bad_one(api_env: UiStack) -> None:
    at = _page("builder", api_env)
    box = next(t for t in at.text_area if t.label == "GDC filter (JSON)")
    box.input('{"op": "in", "content": {"field": "nope.field", "value": ["x"]}}')
    next(b for b in at.button if b.label == "Apply filter").click().run()
    assert at.error and "nope.field" in at.error[0].value
    box = next(t for t in at.text_area if t.label == "GDC filter (JSON)")
    box.input("{not json")
    next(b for b in at.button if b.label == "Apply filter").click().run()
    assert at.error and "not valid JSON" in at.error[0].value
    portal = {
        "op": "and",
        "content": [
            {"op": "in", "content": {"field": "cases.project.project_id", "value": ["TCGA-CHOL"]}},
            {"op": "in", "content": {"field": "cases.demographic.vital_status", "value": ["Dead"]}},
        ],
    }
    box = next(t for t in at.text_area if t.label == "GDC filter (JSON)")
    box.input(json.dumps(portal))
    next(b for b in at.button if b.label == "Apply filter").click().run()
    _no_errors(at)
    expected = _api(api_env, "POST", "/facets", json={"filters": portal})["total"]
    assert at.metric[0].value == str(expected) and 0 < expected < 51


def test_a_broken_link_is_explained_not_a_traceback(api_env: UiStack) -> None:
    at = _page("builder", api_env, filter="{broken")
    assert not at.exception
    assert at.error and "cannot be read" in at.error[0].value


def test_saving_and_refreshing_a_cohort(api_env: UiStack) -> None:
    at = _page("builder", api_env, filter=filters.to_query(CHOL) or "")
    name = next(t for t in at.text_input if t.label == "Name")
    name.input("chol from the builder")
    next(b for b in at.button if "as a cohort" in b.label).click().run()
    _no_errors(at)
    assert at.success and "51 patients" in at.success[0].value
    saved = [c for c in _api(api_env, "GET", "/cohorts")["data"] if c["name"] == "chol from the builder"]
    assert len(saved) == 1 and saved[0]["size"] == 51
    page = _page("cohorts", api_env, cohort=str(saved[0]["id"]))
    _no_errors(page)
    assert page.header[0].value.startswith("chol from the builder")
    assert page.metric[0].value == "51"
    next(b for b in page.button if b.label.startswith("Refresh")).click().run()
    _no_errors(page)
    assert page.success and "+0 / −0 patients since version 1" in page.success[0].value


def test_set_operations_and_case_list_import(api_env: UiStack) -> None:
    barcodes = [
        r.submitter_id
        for r in api_env.db.rows(
            "SELECT p.submitter_id FROM patient p JOIN project pr ON pr.id = p.project_id "
            "WHERE pr.project_id = 'TCGA-CHOL' ORDER BY 1 LIMIT 3"
        )
    ]
    at = _page("cohorts", api_env)
    at.text_input(key="import_name").input("three chol")
    at.text_area[0].input("\n".join([*barcodes, "TCGA-ZZ-0000"]))
    next(b for b in at.button if b.label == "Import").click().run()
    _no_errors(at)
    assert "3 of 4 cases found" in at.success[0].value and "TCGA-ZZ-0000" in at.warning[0].value
    mine = {c["name"]: c["id"] for c in _api(api_env, "GET", "/cohorts")["data"]}
    at = _page("cohorts", api_env)
    at.multiselect[0].select(mine["chol for embeddings"]).select(mine["three chol"])
    at.radio[0].set_value("difference")
    at.text_input(key="set_op_name").input("chol minus three")
    next(b for b in at.button if b.label == "Combine").click().run()
    _no_errors(at)
    assert "48 patients" in at.success[0].value


def test_export_runs_to_completion_with_downloads(api_env: UiStack) -> None:
    cohort = _api(api_env, "POST", "/cohorts", json={"name": "to export", "filters": CHOL})
    at = _page("export", api_env, cohort=str(cohort["id"]))
    _no_errors(at)
    at.text_input[0].input("ui-export")
    next(b for b in at.button if b.label == "Start the export").click().run()
    _no_errors(at)
    export_id = int(at.query_params["export"])
    for _ in range(120):
        if _api(api_env, "GET", f"/exports/{export_id}")["status"] not in ("queued", "running"):
            break
        import time

        time.sleep(0.5)
    at = _page("export", api_env, export=str(export_id))
    _no_errors(at)
    job = _api(api_env, "GET", f"/exports/{export_id}")
    assert job["status"] == "succeeded", job
    assert at.success and job["destination"] in at.success[0].value
    assert {d.label for d in at.get("download_button")} >= {
        "manifest",
        "Croissant metadata",
        "gdc-client manifest",
    }
    assert any("OncoDataset" in c.value for c in at.code)


def test_patient_page_shows_the_graph_lineage_and_similar_patients(api_env: UiStack) -> None:
    case = api_env.embedded_case
    at = _page("patient", api_env, id=case)
    _no_errors(at)
    assert at.header[0].value.startswith(case)
    detail = _api(api_env, "GET", f"/patients/{case}")
    assert any("GDC Data Portal" in m.value for m in at.markdown)
    # similar patients: the API's nearest neighbours by the text embeddings
    near = _api(api_env, "GET", f"/patients/{case}/similar", params={"model": "minilm-l6", "k": 5})["data"]
    shown = [df.value for df in at.dataframe if "similarity" in df.value.columns]
    assert shown and list(shown[0]["similarity"]) == [round(n["similarity"], 4) for n in near]
    lineage = [
        df.value for df in at.dataframe if "run_id" in df.value.columns or "source" in df.value.columns
    ]
    assert lineage, "the lineage tab shows the source documents and runs"
    assert detail["diagnoses"], "the sample patient has diagnoses"


def test_runs_page_lists_the_runs_the_api_lists(api_env: UiStack) -> None:
    at = _page("runs", api_env)
    _no_errors(at)
    runs = _api(api_env, "GET", "/runs", params={"limit": 200})["data"]
    table = at.dataframe[0].value
    assert list(table["id"]) == [r["id"] for r in runs]
    assert at.subheader[0].value.startswith(f"Run {runs[0]['id']}")
