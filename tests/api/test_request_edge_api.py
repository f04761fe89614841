"""The API's edge as a client meets it: oversized filters and bodies are refused at once (422/413, before
anything is compiled or parsed), the GDC API's paging words (`size`, `from`) page like `limit` and the
cursors, both spellings of set operations work, and `/docs` needs no internet."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient

from oncograph.cohorts import filters as filters_module
from oncograph.settings import Settings
from oncograph_api.app import create_app

pytestmark = pytest.mark.integration

SANITY_SECONDS = 10  # generous: such requests once took a minute; they now take milliseconds


def _huge_or(leaves: int = 20_000) -> dict[str, Any]:
    return {
        "op": "or",
        "content": [
            {"op": "=", "content": {"field": "submitter_id", "value": f"TCGA-{i:05d}"}} for i in range(leaves)
        ],
    }


@pytest.fixture()
def no_compilation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an oversized filter reached compilation")

    monkeypatch.setattr(filters_module, "_leaf", refuse)


@pytest.mark.usefixtures("no_compilation")
def test_a_20000_leaf_filter_is_refused_before_compilation(api_db: ApiDb) -> None:
    client = api_db.client()
    curator = api_db.user("edge-curator", "curator")
    huge = _huge_or()
    for method, path, kwargs, loc in [
        ("POST", "/cohorts", {"json": {"name": "huge", "filters": huge}}, "body.filters.content[999]"),
        ("POST", "/facets", {"json": {"filters": huge, "facets": ["primary_site"]}}, "content[999]"),
        # a URL cannot carry 20,000 leaves; 1,001 of the smallest nodes are too many all the same
        (
            "GET",
            "/patients",
            {"params": {"filters": json.dumps({"op": "or", "content": [1] * 1001})}},
            "content[999]",
        ),
    ]:
        started = time.perf_counter()
        response = client.request(method, path, headers=curator, **kwargs)
        assert time.perf_counter() - started < SANITY_SECONDS
        body = assert_problem(response, 422)
        [error] = body["errors"]
        assert error["loc"].endswith(loc) and "more than 1,000 nodes" in error["msg"], (path, error)
    assert api_db.scalar("SELECT count(*) FROM cohort WHERE name = 'huge'") == 0


def test_request_bodies_over_the_limit_are_413_before_they_are_read(api_db: ApiDb) -> None:
    client = api_db.client()
    curator = api_db.user("edge-big", "curator")
    big = b'{"name": "x", "ids": [' + b'"TCGA-00-0000",' * 800_000 + b'"x"]}'  # ~12 MB
    started = time.perf_counter()
    body = assert_problem(
        client.post("/cohorts", headers={**curator, "content-type": "application/json"}, content=big), 413
    )
    assert time.perf_counter() - started < SANITY_SECONDS
    assert body["title"] == "Content too large" and "10,485,760 bytes" in body["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"name": "x", "ids": ['
        for _ in range(100):
            yield b'"TCGA-00-0000",' * 10_000

    body = assert_problem(
        client.post("/cohorts", headers={**curator, "content-type": "application/json"}, content=chunked()),
        413,
    )
    assert "10,485,760 bytes" in body["detail"]
    # no key needed to be refused: the size is checked first, and says nothing about the data
    assert_problem(client.post("/cohorts", content=big, headers={"content-type": "application/json"}), 413)
    # an upload has its own, larger limit; under it the request goes through as before
    assert (
        client.post("/cohorts/upload?name=small", headers=curator, content=b"TCGA-ZZ-0000\n").status_code
        == 422
    )
    # the OpenAPI document names the 413 of every operation with a body
    spec = client.get("/openapi.json").json()
    assert "413" in spec["paths"]["/cohorts"]["post"]["responses"]


def test_gdc_paging_words_page_like_limit_and_cursor(api_db: ApiDb) -> None:
    client, headers = api_db.client(), api_db.user("edge-pager")
    sort = {"sort": "submitter_id"}
    everything: list[str] = []
    cursor = None
    while True:
        page = client.get(
            "/patients",
            headers=headers,
            params={**sort, "limit": 1000, **({"cursor": cursor} if cursor else {})},
        ).json()
        everything += [p["case_id"] for p in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    total = len(everything)
    assert total > 1500
    for start, size in [(0, 10), (5, 7), (1234, 50), (total - 3, 10), (total, 5), (total + 10, 5)]:
        response = client.get("/patients", headers=headers, params={**sort, "from": start, "size": size})
        assert response.status_code == 200, response.text
        page = response.json()
        assert [p["case_id"] for p in page["data"]] == everything[start : start + size], (start, size)
        assert page["total"] == total and page["limit"] == size
        if start + size < total:  # the cursor of an offset page continues where it ends
            after = client.get(
                "/patients", headers=headers, params={**sort, "cursor": page["next_cursor"], "limit": 3}
            ).json()
            assert [p["case_id"] for p in after["data"]] == everything[start + size : start + size + 3]
        else:
            assert page["next_cursor"] is None
    # `size` alone is `limit`; given both, the smaller; `from` with a cursor skips from the cursor on (every
    # schema-valid combination means something: schemathesis sends them)
    assert len(client.get("/patients", headers=headers, params={"size": 3}).json()["data"]) == 3
    assert client.get("/patients", headers=headers, params={"size": 3, "limit": 3}).status_code == 200
    assert len(client.get("/patients", headers=headers, params={"size": 3, "limit": 4}).json()["data"]) == 3
    first = client.get("/patients", headers=headers, params={**sort, "limit": 4}).json()
    later = client.get(
        "/patients", headers=headers, params={**sort, "cursor": first["next_cursor"], "from": 2, "size": 3}
    ).json()
    assert [p["case_id"] for p in later["data"]] == everything[6:9]
    body = assert_problem(client.get("/patients", headers=headers, params={"from": 3, "cursor": "x"}), 422)
    assert body["errors"][0]["loc"] == "query.cursor"
    assert_problem(client.get("/patients", headers=headers, params={"from": 10_001}), 422)

    # cohort members: the same words
    curator = api_db.user("edge-members", "curator")
    brca = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-BRCA"]}}
    made = client.post("/cohorts", headers=curator, json={"name": "brca", "filters": brca})
    assert made.status_code == 201, made.text
    cohort = made.json()["id"]
    members = [
        m["case_id"]
        for m in client.get(f"/cohorts/{cohort}/members", headers=curator, params={"limit": 10_000}).json()[
            "data"
        ]
    ]
    assert len(members) > 20
    for start, size in [(0, 5), (7, 9), (len(members) - 2, 5), (len(members) + 1, 5)]:
        page = client.get(f"/cohorts/{cohort}/members", headers=curator, params={"from": start, "size": size})
        assert page.status_code == 200, page.text
        assert [m["case_id"] for m in page.json()["data"]] == members[start : start + size]
        assert page.json()["total"] == len(members)
    head = client.get(f"/cohorts/{cohort}/members", headers=curator, params={"limit": 3}).json()
    page = client.get(
        f"/cohorts/{cohort}/members",
        headers=curator,
        params={"after": head["next_after"], "from": 2, "size": 4},
    )
    assert [m["case_id"] for m in page.json()["data"]] == members[5:9]


def test_a_single_valued_query_parameter_given_twice_is_a_422(api_db: ApiDb) -> None:
    """``?transform=a&transform=b`` must not silently mean ``b`` (found by schemathesis on GET /runs)."""
    client, headers = api_db.client(), api_db.user("edge-repeat")
    once = client.get("/runs", headers=headers, params={"transform": "harvest_gdc"})
    assert once.status_code == 200, once.text
    twice = client.get("/runs?transform=harvest_gdc&transform=link", headers=headers)
    body = assert_problem(twice, 422)
    assert "query.transform" in json.dumps(body) and "more than once" in json.dumps(body)
    paged = client.get("/patients?limit=5&limit=6", headers=headers)
    assert "query.limit" in json.dumps(assert_problem(paged, 422))


def test_set_operations_take_both_vocabularies(api_db: ApiDb) -> None:
    client, curator = api_db.client(), api_db.user("edge-sets", "curator")

    def cohort(projects: list[str]) -> int:
        f = {"op": "in", "content": {"field": "project.project_id", "value": projects}}
        made = client.post("/cohorts", headers=curator, json={"name": "/".join(projects), "filters": f})
        assert made.status_code == 201, made.text
        return int(made.json()["id"])

    a, b = cohort(["TCGA-LUAD", "TCGA-COAD"]), cohort(["TCGA-COAD"])
    sizes: dict[str, int] = {}
    for op in ("intersection", "intersect", "difference", "subtract", "union"):
        made = client.post(
            "/cohorts/set-operations", headers=curator, json={"op": op, "cohorts": [a, b], "name": op}
        )
        assert made.status_code == 201, made.text
        assert made.json()["definition"]["op"] in ("intersection", "difference", "union")
        sizes[op] = made.json()["size"]
    assert sizes["intersect"] == sizes["intersection"] > 0
    assert sizes["subtract"] == sizes["difference"] > 0
    assert_problem(
        client.post(
            "/cohorts/set-operations", headers=curator, json={"op": "xor", "cohorts": [a, b], "name": "x"}
        ),
        422,
    )


def test_docs_are_served_without_internet() -> None:
    client = TestClient(create_app(settings=Settings(database_url=None)))
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), asset  # nothing from a CDN
        assert client.get(asset).status_code == 200, asset
    assert client.get("/docs/oauth2-redirect").status_code == 200
