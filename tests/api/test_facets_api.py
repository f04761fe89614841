"""POST /facets equals the cohort engine's own counts, and small counts are suppressed when configured."""

from __future__ import annotations

from typing import Any

import pytest
from api.harness import ApiDb, assert_problem

from oncograph.cohorts import query

pytestmark = pytest.mark.integration

FIELDS = [
    "project.project_id",
    "diagnoses.stage",
    "demographic.vital_status",
    "demographic.age_at_index",
    "modalities",
]
FILTERS: list[Any] = [
    None,
    {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL", "TCGA-LIHC"]}},
    {
        "op": "and",
        "content": [
            {"op": "=", "content": {"field": "demographic.vital_status", "value": "Dead"}},
            {"op": ">=", "content": {"field": "diagnoses.age_at_diagnosis", "value": 20000}},
        ],
    },
]


def test_facets_equal_the_core(api_db: ApiDb) -> None:
    client, headers = api_db.client(), api_db.user("fac-viewer")
    scope = api_db.scope("fac-viewer")
    for filters in FILTERS:
        response = client.post(
            "/facets",
            headers=headers,
            json={"filters": filters, "facets": FIELDS, "size": 20, "modality_matrix": True},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        with api_db.engine.connect() as conn:
            total, facets = query.facets(conn, filters, FIELDS, scope, size=20)
            matrix = query.modality_matrix(conn, filters, scope)
        assert body["total"] == total > 0
        assert body["facets"] == [f.to_json() for f in facets]
        assert body["modality_matrix"] == matrix.to_json()
    # a numeric facet with a fixed interval, and no matrix unless asked
    body = client.post(
        "/facets",
        headers=headers,
        json={"facets": ["diagnoses.age_at_diagnosis"], "intervals": {"diagnoses.age_at_diagnosis": 3650}},
    ).json()
    assert body["facets"][0]["interval"] == 3650 and body["modality_matrix"] is None
    counted = api_db.scalar(
        "SELECT count(*) FROM patient p WHERE p.retired_release_id IS NULL AND EXISTS (SELECT 1 FROM diagnosis d "
        "WHERE d.patient_id = p.id AND d.retired_release_id IS NULL AND d.age_at_diagnosis IS NOT NULL)"
    )
    assert body["total"] - body["facets"][0]["missing"] == counted


def test_small_counts_are_suppressed(api_db: ApiDb) -> None:
    n = 11
    # suppression is for aggregate-only access (oncograph.access.suppression); viewers count exactly
    client, headers = api_db.client(min_cell_count=n), api_db.user("fac-suppressed", "aggregate")
    plain = (
        api_db.client()
        .post(
            "/facets",
            headers=headers,
            json={"facets": ["project.project_id", "demographic.age_at_index"], "modality_matrix": True},
        )
        .json()
    )
    body = client.post(
        "/facets",
        headers=headers,
        json={"facets": ["project.project_id", "demographic.age_at_index"], "modality_matrix": True},
    ).json()

    def expect(count: int) -> int | str:
        return f"<{n}" if 0 < count < n else count

    assert body["total"] == plain["total"]
    for got, raw in zip(body["facets"], plain["facets"], strict=True):
        assert [b["count"] for b in got["buckets"]] == [expect(b["count"]) for b in raw["buckets"]]
        assert got["missing"] == expect(raw["missing"])
    projects = {b["key"]: b["count"] for b in body["facets"][0]["buckets"]}
    assert projects["CTSP-DLBCL1"] == projects["MMRF-COMMPASS"] == f"<{n}"
    assert projects["TCGA-BRCA"] == plain["facets"][0]["buckets"][0]["count"]
    matrix, raw_matrix = body["modality_matrix"], plain["modality_matrix"]
    assert matrix["modalities"] == {k: expect(v) for k, v in raw_matrix["modalities"].items()}
    assert [c["count"] for c in matrix["combinations"]] == [
        expect(c["count"]) for c in raw_matrix["combinations"]
    ]

    # a tiny cohort: its total, and the min/max/mean of its values, are hidden (a project of 5 patients: a
    # filter on one barcode is refused to aggregate-only keys, test below)
    one = {"op": "=", "content": {"field": "project.project_id", "value": "CTSP-DLBCL1"}}
    tiny = client.post(
        "/facets", headers=headers, json={"filters": one, "facets": ["demographic.age_at_index"]}
    ).json()
    assert tiny["total"] == f"<{n}"
    assert tiny["facets"][0]["stats"]["min"] is None and tiny["facets"][0]["stats"]["mean"] is None
    none = {"op": "=", "content": {"field": "project.project_id", "value": "no such project"}}
    assert client.post("/facets", headers=headers, json={"filters": none}).json()["total"] == 0

    listed = {p["project_id"]: p["patients"] for p in client.get("/projects", headers=headers).json()["data"]}
    assert listed["CTSP-DLBCL1"] == f"<{n}" and isinstance(listed["TCGA-BRCA"], int)
    # no endpoint hands an aggregate-only principal an exact count: records are refused outright
    page = client.get(
        "/patients",
        headers=headers,
        params={
            "limit": 1,
            "filters": '{"op": "=", "content": {"field": "project.project_id", "value": "CTSP-DLBCL1"}}',
        },
    )
    assert_problem(page, 403)
    exact = client.get(
        "/patients",
        headers=api_db.user("fac-exact"),
        params={
            "limit": 1,
            "filters": '{"op": "=", "content": {"field": "project.project_id", "value": "CTSP-DLBCL1"}}',
        },
    ).json()
    assert exact["total"] == 5


def test_aggregate_only_access_singles_no_one_out(api_db: ApiDb) -> None:
    """Issue 9 A3, as a hostile aggregate-only key tried it: a facet of barcodes listed every patient, a filter
    on one barcode described that person through every other facet, `other_values` counted a suppressed total
    exactly, and histogram min/max (or bins of width 5e-324) gave single people's exact values."""
    n = 11
    client, headers = api_db.client(min_cell_count=n), api_db.user("fac-aggregate", "aggregate")

    def post(body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = client.post("/facets", headers=headers, json=body).json()
        return answer

    # identifier fields are record-level: not as facets, not in filters
    for body in (
        {"facets": ["submitter_id"], "size": 1000},
        {"facets": ["samples.sample_id"]},
        {"filters": {"op": "in", "content": {"field": "submitter_id", "value": ["TCGA-BH-A0EA"]}}},
        {
            "filters": {"op": "=", "content": {"field": "case_id", "value": "x"}},
            "facets": ["project.project_id"],
        },
    ):
        problem = assert_problem(client.post("/facets", headers=headers, json=body), 403)
        assert "identifier" in problem["detail"]
    fields = {f["field"]: f for f in client.get("/fields", headers=headers).json()["data"]}
    assert fields["submitter_id"]["identifier"] and not fields["project.project_id"]["identifier"]

    # a cohort of fewer than N patients is not described at all (CTSP-DLBCL1 has 5)
    tiny = {"op": "in", "content": {"field": "project.project_id", "value": ["CTSP-DLBCL1"]}}
    body = post(
        {
            "filters": tiny,
            "facets": ["demographic.vital_status", "diagnoses.age_at_diagnosis"],
            "modality_matrix": True,
        }
    )
    assert body["total"] == f"<{n}"
    for facet in body["facets"]:
        assert facet["buckets"] == [] and facet["missing"] == f"<{n}"
    assert body["modality_matrix"] == {"total": f"<{n}", "modalities": {}, "combinations": []}

    # a large cohort: every count suppressed, other_values too; no min/max; a hair-thin bin width is widened
    brca = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-BRCA"]}}
    body = post(
        {
            "filters": brca,
            "facets": ["diagnoses.primary_diagnosis", "diagnoses.age_at_diagnosis"],
            "size": 1,
            "intervals": {"diagnoses.age_at_diagnosis": 5e-324},
        }
    )
    terms, histogram = body["facets"]
    small = f"<{n}"
    assert terms["other_values"] == small or terms["other_values"] >= n
    assert histogram["stats"]["min"] is None and histogram["stats"]["max"] is None
    assert histogram["stats"]["mean"] is not None
    assert histogram["interval"] >= 1e-6 and all(b["to"] > b["from"] for b in histogram["buckets"])
    assert all(b["count"] == small or b["count"] >= n for b in histogram["buckets"])
