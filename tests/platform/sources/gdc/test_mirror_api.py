"""The mirror's HTTP API against real documents: envelope, pagination, every filter op, projection, sort."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from oncograph.sources.gdc.mirror import MirrorStore
from oncograph.sources.gdc.mirror.search import pagination

DATA = Path(__file__).resolve().parents[4] / "data" / "gdc"
HCMI_CASE = "33165ed4-5f38-4566-8d0d-82e2a6d2743f"
CHOL = {"op": "=", "content": {"field": "cases.project.project_id", "value": ["TCGA-CHOL"]}}
Api = Callable[..., httpx.Response]
Recorded = Callable[[str], Any]
CholRaw = tuple[list[dict[str, Any]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def chol_raw() -> CholRaw:
    """The raw CHOL clinical and biospecimen exports, to compute expected answers independently."""
    folder = DATA / "gdc_portal_json"
    clinical = orjson.loads((folder / "gdc_clinical_TCGA-CHOL_2024_51cases.json").read_bytes())
    biospecimen = orjson.loads((folder / "gdc_biospecimen_TCGA-CHOL_2024_51cases.json").read_bytes())
    return clinical, biospecimen


@pytest.fixture(scope="module")
def api(mirror_url: str) -> Iterator[Api]:
    client = httpx.Client(base_url=mirror_url)

    def call(path: str, method: str = "POST", **params: Any) -> httpx.Response:
        if method == "GET":
            return client.get(path, params=params)
        return client.post(path, json=params)

    yield call
    client.close()


def _search(
    api: Callable[..., httpx.Response], path: str = "/cases", method: str = "POST", **params: Any
) -> dict[str, Any]:
    response = api(path, method, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"data", "warnings"} and body["warnings"] == {}
    data: dict[str, Any] = body["data"]
    return data


def _chol_ids(api: Callable[..., httpx.Response], leaf: dict[str, Any]) -> set[str]:
    data = _search(api, filters={"op": "and", "content": [CHOL, leaf]}, size=100, fields="submitter_id")
    assert data["pagination"]["total"] == len(data["hits"])
    return {h["submitter_id"] for h in data["hits"]}


# ---------------------------------------------------------------- envelope and pagination


def test_pagination_math_matches_every_recorded_response() -> None:
    checked = 0
    for path in sorted((DATA / "gdc_api_json").glob("*.json")):
        response = orjson.loads(path.read_bytes()).get("response")
        block = response.get("data", {}).get("pagination") if isinstance(response, dict) else None
        if not isinstance(block, dict):
            continue
        mine = pagination(
            total=block["total"],
            count=block["count"],
            size=block["size"],
            from_=block["from"],
            sort=block["sort"],
        )
        assert mine == block, path.name
        checked += 1
    assert checked >= 20  # includes from=101/size=5 (page 21), size=0 facets, and the zero-hits form


@pytest.mark.parametrize(
    "name",
    [
        "gdc_cases_HCMI_filter_classification_metastasis_expand_diagnoses.json",
        "gdc_cases_HCMI_exclude_op.json",
        "gdc_cases_excludeifany_zero_hits.json",
    ],
)
def test_documented_exclude_examples_reproduce_the_recorded_responses(
    api: Api, recorded: Recorded, name: str
) -> None:
    op = {"gdc_cases_HCMI_f": "=", "gdc_cases_HCMI_e": "exclude", "gdc_cases_exclud": "excludeifany"}[
        name[:16]
    ]
    # the request bodies of GDC API docs, Search_and_Retrieval.md "exclude / excludeifany" examples
    body = {
        "size": 10,
        "filters": {
            "op": "and",
            "content": [
                {"op": "=", "content": {"field": "case_id", "value": [HCMI_CASE]}},
                {
                    "op": op,
                    "content": {"field": "diagnoses.classification_of_tumor", "value": ["metastasis"]},
                },
            ],
        },
        "expand": "diagnoses",
        "fields": "diagnoses.classification_of_tumor",
    }
    response = api("/cases", **body)
    assert response.status_code == 200
    assert response.json() == recorded(name)


def test_recorded_sorted_listings_are_reproduced(api: Api, recorded: Recorded) -> None:
    cases = _search(api, fields="submitter_id", sort="submitter_id:asc", size=10)
    assert cases["hits"] == recorded("gdc_cases_sort_submitter_id_asc_size10.json")["data"]["hits"]
    five = _search(
        api, "/cases", "GET", fields="submitter_id", sort="submitter_id:asc", size=5, pretty="true"
    )
    assert five["hits"] == recorded("gdc_cases_fields_submitter_id_pretty_size5.json")["data"]["hits"]
    files = _search(api, "/files", "GET", **{"from": 0, "size": 2, "sort": "file_size:asc"})
    assert files["hits"] == recorded("gdc_files_list_from0_size2_sort_file_size.json")["data"]["hits"]
    projects = _search(api, "/projects", "GET", **{"from": "0", "size": "2", "sort": "project_id:asc"})
    assert projects["hits"] == recorded("gdc_projects_list_from0_size2_sort_project_id.json")["data"]["hits"]


def _replay(mirror_url: str, name: str) -> dict[str, Any]:
    request_url = orjson.loads((DATA / "gdc_api_json" / name).read_bytes())["_source"]["request"]
    query = urlsplit(request_url).query  # verbatim: URL-encoded filters, fields, expand, pretty
    response = httpx.get(f"{mirror_url}/cases?{query}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_recorded_get_urls_replay(mirror_url: str, recorded: Recorded) -> None:
    follow_up = "gdc_cases_expand_follow_ups_1hits.json"  # ">=" on a doubly nested list, fields projection
    assert _replay(mirror_url, follow_up) == recorded(follow_up)
    bh = "gdc_cases_filter_submitter_id_TCGA-BH-A0EA.json"  # the filters string ends in "\n\n"
    got, real = _replay(mirror_url, bh), recorded(bh)
    assert got["data"]["pagination"] == real["data"]["pagination"]
    # default fields; the merged document's child-id lists come from the newer single-entity response
    assert got["data"]["hits"][0].keys() == real["data"]["hits"][0].keys()


def test_zero_hits_and_out_of_range_pages(api: Api) -> None:
    none = _search(api, filters={"op": "=", "content": {"field": "submitter_id", "value": "nobody"}})
    assert none == {
        "hits": [],
        "pagination": {"count": 0, "total": 0, "size": 10, "from": 0, "sort": "", "page": 0, "pages": 0},
    }
    past = _search(api, "/cases", "POST", filters=CHOL, size=7, **{"from": 56})
    assert past["hits"] == [] and past["pagination"] == {
        "count": 0, "total": 51, "size": 7, "from": 56, "sort": "", "page": 9, "pages": 8,
    }  # fmt: skip
    count_only = _search(api, filters=CHOL, size=0)
    assert count_only["pagination"] == {
        "count": 0, "total": 51, "size": 0, "from": 0, "sort": "", "page": 1, "pages": 51,
    }  # fmt: skip
    last = _search(api, "/cases", "POST", filters=CHOL, size=7, sort="submitter_id:asc", **{"from": 49})
    assert (
        len(last["hits"]) == 2
        and last["pagination"]["page"] == 8
        and last["pagination"]["sort"] == ("submitter_id:asc")
    )


def test_every_hit_carries_id(api: Api) -> None:
    for endpoint, key in (("/cases", "case_id"), ("/files", "file_id"), ("/projects", "project_id")):
        data = _search(api, endpoint, size=10_000)
        assert data["pagination"]["count"] == data["pagination"]["total"] == len(data["hits"])
        assert all(h["id"] == h[key] for h in data["hits"] if key in h)
        assert all(h["id"] for h in data["hits"])


# ---------------------------------------------------------------- filters


def test_equality_ops_with_and_without_prefix(api: Api, chol_raw: CholRaw) -> None:
    clinical, _ = chol_raw
    all_chol = {c["submitter_id"] for c in clinical}
    assert len(all_chol) == 51
    for field in ("project.project_id", "cases.project.project_id"):
        for value in ("TCGA-CHOL", ["TCGA-CHOL"]):
            data = _search(api, filters={"op": "=", "content": {"field": field, "value": value}}, size=100)
            assert {h["submitter_id"] for h in data["hits"]} == all_chol
    two = ["TCGA-4G-AAZO", "TCGA-W7-A93O"]
    assert _chol_ids(api, {"op": "in", "content": {"field": "submitter_id", "value": two}}) == set(two)
    male = {c["submitter_id"] for c in clinical if c.get("demographic", {}).get("gender") == "male"}
    not_female = {c["submitter_id"] for c in clinical if c.get("demographic", {}).get("gender") != "female"}
    assert _chol_ids(api, {"op": "=", "content": {"field": "demographic.gender", "value": "male"}}) == male
    assert (
        _chol_ids(api, {"op": "!=", "content": {"field": "demographic.gender", "value": "female"}})
        == not_female
    )
    assert len(not_female) == 24  # 21 male + 3 cases without a demographic


def test_comparison_ops_on_nested_lists(api: Api, chol_raw: CholRaw) -> None:
    clinical, _ = chol_raw

    def ages(case: dict[str, Any]) -> list[float]:
        return [d["age_at_diagnosis"] for d in case.get("diagnoses", []) if "age_at_diagnosis" in d]

    cut = 20000
    expected = {
        "<": {c["submitter_id"] for c in clinical if any(a < cut for a in ages(c))},
        "<=": {c["submitter_id"] for c in clinical if any(a <= cut for a in ages(c))},
        ">": {c["submitter_id"] for c in clinical if any(a > cut for a in ages(c))},
        ">=": {c["submitter_id"] for c in clinical if any(a >= cut for a in ages(c))},
    }
    for op, want in expected.items():
        for value in (cut, str(cut), float(cut)):
            leaf = {"op": op, "content": {"field": "diagnoses.age_at_diagnosis", "value": value}}
            assert _chol_ids(api, leaf) == want, (op, value)
    assert expected["<"] and expected[">"]
    dates = {"op": ">=", "content": {"field": "diagnoses.updated_datetime", "value": "2019-01-01"}}
    assert len(_chol_ids(api, dates)) == 48  # ISO dates compare as strings


def test_exclude_removes_only_when_all_values_match_excludeifany_when_any(
    api: Api, chol_raw: CholRaw
) -> None:
    _, biospecimen = chol_raw
    types = {c["submitter_id"]: {s["sample_type"] for s in c["samples"]} for c in biospecimen}
    field = "samples.sample_type"
    pair = ["Primary Tumor", "Blood Derived Normal"]
    assert (
        len(_chol_ids(api, {"op": "exclude", "content": {"field": field, "value": ["Primary Tumor"]}})) == 51
    )
    assert (
        _chol_ids(api, {"op": "excludeifany", "content": {"field": field, "value": ["Primary Tumor"]}})
        == set()
    )
    kept = _chol_ids(api, {"op": "exclude", "content": {"field": field, "value": pair}})
    assert kept == {k for k, v in types.items() if not v <= set(pair)} and len(kept) == 20
    assert _chol_ids(
        api, {"op": "excludeifany", "content": {"field": field, "value": ["Solid Tissue Normal"]}}
    ) == {k for k, v in types.items() if "Solid Tissue Normal" not in v}


def test_is_and_not_missing(api: Api, chol_raw: CholRaw) -> None:
    clinical, _ = chol_raw
    missing = {c["submitter_id"] for c in clinical if "demographic" not in c}
    assert len(missing) == 3
    is_missing = {"op": "is", "content": {"field": "demographic.gender", "value": "MISSING"}}
    assert _chol_ids(api, is_missing) == missing
    not_missing = {"op": "not", "content": {"field": "demographic.gender"}}
    assert _chol_ids(api, not_missing) == {c["submitter_id"] for c in clinical} - missing
    dead = {c["submitter_id"] for c in clinical if "days_to_death" in c.get("demographic", {})}
    assert (
        _chol_ids(api, {"op": "not", "content": {"field": "demographic.days_to_death", "value": "MISSING"}})
        == dead
    )


def test_boolean_combinations_wildcards_and_types(api: Api, chol_raw: CholRaw) -> None:
    clinical, _ = chol_raw
    male = {"op": "=", "content": {"field": "demographic.gender", "value": "male"}}
    dead = {"op": "=", "content": {"field": "demographic.vital_status", "value": "Dead"}}
    by_id = {c["submitter_id"]: c.get("demographic", {}) for c in clinical}
    assert _chol_ids(api, {"op": "or", "content": [male, dead]}) == {
        k for k, d in by_id.items() if d.get("gender") == "male" or d.get("vital_status") == "Dead"
    }
    assert _chol_ids(api, {"op": "and", "content": [male, dead]}) == {
        k for k, d in by_id.items() if d.get("gender") == "male" and d.get("vital_status") == "Dead"
    }
    assert len(_chol_ids(api, {"op": "and", "content": []})) == 51
    assert _chol_ids(api, {"op": "or", "content": []}) == set()
    radiation = {
        "op": "in",
        "content": {"field": "diagnoses.treatments.treatment_type", "value": ["Radiation*"]},
    }
    assert len(_chol_ids(api, radiation)) == 48
    lower = {"op": "=", "content": {"field": "diagnoses.primary_diagnosis", "value": "cholangiocarcinoma"}}
    assert _chol_ids(api, lower) == set()  # case-sensitive, like the keyword fields of the real index
    hcmi = _search(
        api,
        filters={"op": "=", "content": {"field": "diagnoses.diagnosis_is_primary_disease", "value": True}},
    )
    assert HCMI_CASE in {h["id"] for h in hcmi["hits"]}
    cptac = _search(
        api,
        filters={"op": "=", "content": {"field": "diagnoses.diagnosis_is_primary_disease", "value": "true"}},
        size=0,
    )
    assert cptac["pagination"]["total"] > 200  # CPTAC-3 stores the string "true"; both spellings match


@pytest.mark.parametrize(
    ("filters", "fragment"),
    [
        ({"op": "like", "content": {"field": "x", "value": 1}}, "unknown op 'like'"),
        ({"content": {"field": "x", "value": 1}}, "'op' is missing"),
        ({"op": "in", "content": {"field": "submitter_id"}}, "needs a 'value'"),
        ({"op": "in", "content": {"field": "submitter_id", "value": []}}, "empty value list"),
        ({"op": "=", "content": [{"field": "x"}]}, "needs 'content' to be an object"),
        ({"op": "and", "content": {"op": "=", "content": {}}}, "list of filter nodes"),
        (
            {"op": "and", "content": [{"op": "=", "content": {"value": 1}}]},
            "filters.content[0]: 'content.field'",
        ),
        ({"op": "is", "content": {"field": "x", "value": "present"}}, 'only takes the value "MISSING"'),
        ({"op": "<", "content": {"field": "x", "value": [1, 2]}}, "exactly one value"),
        ({"op": "=", "content": {"field": "x", "value": None}}, "use op 'is' with MISSING"),
        ("{not json", "filters is not valid JSON"),
        ([1, 2], "must be an object"),
    ],
)
def test_malformed_filters_answer_400_with_the_problem(api: Api, filters: Any, fragment: str) -> None:
    response = api("/cases", filters=filters)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


# ---------------------------------------------------------------- projection


def test_default_fields_are_top_level_scalars(api: Api, mirror_store: MirrorStore) -> None:
    data = _search(api, filters=CHOL, size=100)
    for hit in data["hits"]:
        doc = mirror_store.get("cases", hit["id"])
        assert doc is not None
        assert set(hit) == {"id", "case_id", "submitter_id"}  # CHOL exports have no other top-level scalars
        assert not any(isinstance(v, dict) for v in hit.values())


def test_fields_walk_into_lists(api: Api, chol_raw: CholRaw) -> None:
    clinical, _ = chol_raw
    data = _search(
        api, filters=CHOL, size=100, fields="diagnoses.treatments.treatment_type,cases.submitter_id"
    )
    expected = {
        c["submitter_id"]: [{"treatments": [{"treatment_type": t["treatment_type"]} for t in d["treatments"]]}
                            for d in c["diagnoses"]]
        for c in clinical if "diagnoses" in c
    }  # fmt: skip
    for hit in data["hits"]:
        assert set(hit) <= {"id", "submitter_id", "diagnoses"}
        assert hit.get("diagnoses") == expected.get(hit["submitter_id"])


def test_expand_gives_group_scalars_only(api: Api, chol_raw: CholRaw) -> None:
    clinical, _ = chol_raw
    data = _search(api, filters=CHOL, size=100, expand=["diagnoses", "demographic"])
    by_id = {c["submitter_id"]: c for c in clinical}
    for hit in data["hits"]:
        raw = by_id[hit["submitter_id"]]
        assert "project" not in hit and "samples" not in hit and "exposures" not in hit
        assert hit.get("demographic") == raw.get("demographic")
        for mine, real in zip(hit.get("diagnoses", []), raw.get("diagnoses", []), strict=True):
            assert mine == {k: v for k, v in real.items() if k != "treatments"}
    deeper = _search(api, filters=CHOL, size=100, expand="diagnoses.treatments")
    assert all(set(d) == {"treatments"} for h in deeper["hits"] for d in h.get("diagnoses", []))


def test_single_entity_and_404(api: Api, mirror_url: str, mirror_store: MirrorStore) -> None:
    doc = mirror_store.get("cases", "0775583e-c0a0-4f18-9ca2-8f89cedce3d6")
    assert doc is not None
    for prefix in ("", "/v0"):
        response = httpx.get(
            f"{mirror_url}{prefix}/cases/0775583e-c0a0-4f18-9ca2-8f89cedce3d6",
            params={"expand": "demographic"},
        )
        assert response.status_code == 200
        body = response.json()
        assert body["warnings"] == {}
        assert body["data"] == {
            "case_id": doc["case_id"],
            "submitter_id": doc["submitter_id"],
            "demographic": doc["demographic"],
        }
    missing = httpx.get(f"{mirror_url}/cases/no-such-case")
    assert missing.status_code == 404 and "not found" in missing.json()["message"]
    assert httpx.get(f"{mirror_url}/annotations").status_code == 404
    project = httpx.post(f"{mirror_url}/projects/TARGET-NBL", json={"expand": "summary"}).json()["data"]
    assert project["summary"]["case_count"] > 0


# ---------------------------------------------------------------- request forms, sort, HTTP


def test_get_post_json_string_and_form_requests_agree(mirror_url: str) -> None:
    params = {"filters": json.dumps(CHOL), "fields": "submitter_id,demographic.gender", "size": "5",
              "from": "3", "sort": "submitter_id:desc"}  # fmt: skip
    get = httpx.get(f"{mirror_url}/cases", params=params).json()
    post_string = httpx.post(f"{mirror_url}/cases", json=params).json()
    post_object = httpx.post(
        f"{mirror_url}/cases", json={**params, "filters": CHOL, "size": 5, "from": 3}
    ).json()
    form = httpx.post(f"{mirror_url}/v0/cases", data=params).json()
    assert get == post_string == post_object == form
    assert get["data"]["pagination"]["count"] == 5


def test_sort_directions_missing_last_and_ties_by_id(api: Api) -> None:
    asc = _search(api, filters=CHOL, size=100, fields="submitter_id", sort="submitter_id:asc")
    desc = _search(api, filters=CHOL, size=100, fields="submitter_id", sort="cases.submitter_id:desc")
    names = [h["submitter_id"] for h in asc["hits"]]
    assert names == sorted(names) and [h["submitter_id"] for h in desc["hits"]] == names[::-1]
    for direction in ("asc", "desc"):
        data = _search(
            api,
            filters=CHOL,
            size=100,
            fields="demographic.days_to_death",
            sort=f"demographic.days_to_death:{direction}",
        )
        values = [h.get("demographic", {}).get("days_to_death") for h in data["hits"]]
        present = [v for v in values if v is not None]
        assert values[: len(present)] == sorted(present, reverse=direction == "desc")
        assert values[len(present) :] == [None] * (51 - len(present))
    tied = _search(
        api, filters=CHOL, size=100, fields="demographic.gender", sort="demographic.gender:asc,case_id:desc"
    )
    genders = [h.get("demographic", {}).get("gender") for h in tied["hits"]]
    assert genders == ["female"] * 27 + ["male"] * 21 + [None] * 3
    females = [h["id"] for h in tied["hits"][:27]]
    assert females == sorted(females, reverse=True)


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"format": "TSV"}, "format=TSV is not supported"),
        ({"size": -1}, "size must be a non-negative integer"),
        ({"from": "ten"}, "from must be a non-negative integer"),
        ({"sort": "submitter_id:up"}, "sort term"),
        ({"facets": "program.name"}, "facets are not supported"),
        ({"fields": 7}, "fields must be"),
    ],
)
def test_bad_parameters_answer_400(api: Api, params: dict[str, Any], fragment: str) -> None:
    response = api("/cases", **params)
    assert response.status_code == 400 and fragment in response.json()["message"]


def test_keep_alive_and_content_length(mirror_url: str) -> None:
    parts = urlsplit(mirror_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/cases", body=b'{"size": 2}', headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200 and int(response.headers["Content-Length"]) == len(body)
            assert response.headers.get("Connection") != "close"
        first_socket = conn.sock
        conn.request("GET", "/status")
        assert conn.getresponse().read() and conn.sock is first_socket  # same connection reused
    finally:
        conn.close()
