"""The API's service surface: health, authentication and roles, the one error shape, OpenAPI, runs, lineage."""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
import pytest
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from oncograph.access import disable_principal, revoke_key
from oncograph.cohorts.fields import FIELDS
from oncograph.db import transaction
from oncograph.settings import Settings
from oncograph_api.app import create_app

pytestmark = pytest.mark.integration

CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}


def test_health_answers_without_a_key(api_db: ApiDb) -> None:
    response = api_db.client().get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["database"] == "ok"


def test_health_is_503_when_the_database_is_down(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg://nobody@/nowhere_test?host={tmp_path}"
    engine = create_engine(url)
    client = TestClient(create_app(engine, Settings(database_url=url)), raise_server_exceptions=False)
    with caplog.at_level(logging.WARNING, logger="oncograph_api.errors"):
        body = assert_problem(client.get("/health"), 503)
    assert body["title"] == "Database unavailable"
    # nothing of the driver's message (socket paths, user names) reaches the client; the log has it
    assert str(tmp_path) not in body["detail"] and "nobody" not in body["detail"]
    reference = body["detail"].rsplit("reference ", 1)[1].rstrip(")")
    assert any(reference in r.getMessage() for r in caplog.records)
    # an authenticated endpoint on a dead database is a 503 problem too, not a stack trace
    assert_problem(client.get("/fields", headers={"X-API-Key": "og_0123456789_secret"}), 503)
    engine.dispose()


def test_requests_take_at_most_api_threads_threads(tmp_path: Any) -> None:
    """The app's event loop lends sync request work ``api_threads`` threads (anyio's default is 40)."""
    url = f"postgresql+psycopg://nobody@/nowhere_test?host={tmp_path}"
    app = create_app(create_engine(url), Settings(database_url=url, api_threads=3))
    with TestClient(app) as client:
        assert client.portal is not None
        tokens = client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
    assert tokens == 3


def test_every_endpoint_but_health_needs_a_valid_key(api_db: ApiDb) -> None:
    client = api_db.client()
    headers = api_db.user("svc-viewer")
    for method, path in [
        ("GET", "/fields"),
        ("GET", "/projects"),
        ("GET", "/patients"),
        ("GET", "/patients/TCGA-BH-A0EA"),
        ("POST", "/facets"),
        ("GET", "/cohorts"),
        ("POST", "/cohorts"),
        ("GET", "/cohorts/1"),
        ("GET", "/runs"),
        ("GET", "/lineage/TCGA-BH-A0EA"),
    ]:
        for bad in (
            {},
            {"X-API-Key": "og_0123456789_wrong"},
            {"X-API-Key": "not a key"},
            {"Authorization": "Bearer x"},
        ):
            body = assert_problem(client.request(method, path, headers=bad, json={}), 401)
            assert body["title"] == "Authentication required"
        response = client.request(method, path, headers=bad, json={})
        assert response.headers["www-authenticate"].startswith("Bearer")
    # the key works as X-API-Key and as a bearer token
    assert client.get("/fields", headers=headers).status_code == 200
    bearer = {"Authorization": f"Bearer {headers['X-API-Key']}"}
    assert client.get("/fields", headers=bearer).status_code == 200
    # the docs need no key
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200


def test_revoked_keys_and_disabled_users_are_refused(api_db: ApiDb) -> None:
    client = api_db.client()
    revoked = api_db.user("svc-revoked")
    disabled = api_db.user("svc-disabled")
    assert client.get("/fields", headers=revoked).status_code == 200
    with transaction(api_db.sessions) as s:
        revoke_key(s, revoked["X-API-Key"].split("_")[1])
        disable_principal(s, "svc-disabled")
    assert_problem(client.get("/fields", headers=revoked), 401)
    assert_problem(client.get("/fields", headers=disabled), 401)


def test_roles_viewer_reads_curator_writes(api_db: ApiDb) -> None:
    client = api_db.client()
    viewer = api_db.user("svc-v2", "viewer")
    curator = api_db.user("svc-c2", "curator")
    body = {"name": "chol", "filters": CHOL}
    problem = assert_problem(client.post("/cohorts", headers=viewer, json=body), 403)
    assert "curator" in problem["detail"]
    assert_problem(client.post("/cohorts/upload?name=x", headers=viewer, content=b"TCGA-BH-A0EA"), 403)
    assert_problem(
        client.post(
            "/cohorts/set-operations", headers=viewer, json={"op": "union", "cohorts": [1, 2], "name": "u"}
        ),
        403,
    )
    made = client.post("/cohorts", headers=curator, json=body)
    assert made.status_code == 201, made.text
    cohort = made.json()["id"]
    # the viewer cannot see a private cohort of someone else: 404, not 403 (its existence is not revealed)
    assert_problem(client.get(f"/cohorts/{cohort}", headers=viewer), 404)
    assert_problem(client.delete(f"/cohorts/{cohort}", headers=viewer), 403)
    assert client.get(f"/cohorts/{cohort}", headers=curator).status_code == 200


def test_problem_documents_for_client_errors(api_db: ApiDb) -> None:
    client = api_db.client()
    headers = api_db.user("svc-errors")
    body = assert_problem(client.get("/no/such/route", headers=headers), 404)
    assert body["instance"] == "/no/such/route"
    assert_problem(client.put("/fields", headers=headers), 405)
    missing = assert_problem(client.get("/cohorts/999999", headers=headers), 404)
    assert "999999" in missing["detail"] and missing["hint"]
    # request validation: every problem, each located
    invalid = assert_problem(
        client.post("/facets", headers=headers, json={"facets": "x", "size": 0, "bogus": 1}), 422
    )
    locs = {e["loc"] for e in invalid["errors"]}
    assert {"body.facets", "body.size", "body.bogus"} <= locs
    bad_limit = assert_problem(client.get("/patients?limit=5000", headers=headers), 422)
    assert bad_limit["errors"][0]["loc"] == "query.limit"
    # a filter's problems are located from the top of the request
    bad_filter = {
        "op": "and",
        "content": [{"op": "in", "content": {"field": "nope", "value": ["x"]}}, {"op": "?"}],
    }
    located = assert_problem(client.post("/facets", headers=headers, json={"filters": bad_filter}), 422)
    assert [e["loc"] for e in located["errors"]] == [
        "body.filters.content[0].content.field",
        "body.filters.content[1].op",
    ]
    assert_problem(client.get("/cohorts/not-a-number", headers=headers), 422)
    assert_problem(client.get("/runs?cursor=abc", headers=headers), 422)


def test_unexpected_errors_do_not_leak(api_db: ApiDb, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(api_db.engine, Settings(database_url=api_db.url))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals at /srv/oncograph/db.py line 42")

    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="oncograph_api.errors"):
        body = assert_problem(client.get("/boom"), 500)
    assert "secret" not in client.get("/boom").text
    assert body["title"] == "Internal server error"
    assert any("RuntimeError" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_fields_projects_runs_and_lineage(api_db: ApiDb) -> None:
    client = api_db.client()
    headers = api_db.user("svc-reader")
    fields = client.get("/fields", headers=headers).json()
    assert fields["count"] == len(FIELDS) == len(fields["data"])
    assert {"field": "diagnoses.stage", "type": "string", "facet": "terms", "nested": True}.items() <= next(
        f for f in fields["data"] if f["field"] == "diagnoses.stage"
    ).items()

    projects = client.get("/projects", headers=headers).json()
    expected = {
        r.project_id: r.n
        for r in api_db.rows(
            "SELECT pr.project_id, count(p.id) AS n FROM project pr LEFT JOIN patient p ON p.project_id = pr.id "
            "AND p.retired_release_id IS NULL WHERE pr.retired_release_id IS NULL GROUP BY pr.project_id"
        )
    }
    assert {p["project_id"]: p["patients"] for p in projects["data"]} == expected

    runs = client.get("/runs?limit=2", headers=headers).json()
    all_ids = [r.id for r in api_db.rows("SELECT id FROM run ORDER BY id DESC")]
    assert [r["id"] for r in runs["data"]] == all_ids[:2]
    seen = [r["id"] for r in runs["data"]]
    cursor = runs["next_cursor"]
    while cursor:
        page = client.get(f"/runs?limit=2&cursor={cursor}", headers=headers).json()
        seen += [r["id"] for r in page["data"]]
        cursor = page["next_cursor"]
    assert seen == all_ids
    one = client.get(f"/runs/{all_ids[-1]}", headers=headers).json()
    assert one["id"] == all_ids[-1] and one["transform"] and one["status"] == "succeeded"
    assert_problem(client.get("/runs/999999", headers=headers), 404)

    lineage = client.get("/lineage/TCGA-BH-A0EA", headers=headers).json()
    kinds = {r["kind"] for r in lineage["records"]}
    assert "patient" in kinds
    current = [d for d in lineage["documents"] if d["current"]]
    assert current and all(d["release"] and d["run_id"] for d in current)
    assert_problem(client.get("/lineage/TCGA-XX-0000", headers=headers), 404)


def test_openapi_documents_every_endpoint(api_db: ApiDb) -> None:
    spec = api_db.client().get("/openapi.json").json()
    assert {"ApiKey", "Bearer"} <= set(spec["components"]["securitySchemes"])
    tags = {t["name"] for t in spec["tags"]}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary") and op.get("description"), (method, path)
            assert set(op["tags"]) <= tags, (method, path)
            for status, response in op["responses"].items():
                if status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
    survival = spec["paths"]["/cohorts/{cohort_id}/survival"]["get"]["description"]
    assert "index date" in survival and "(missing)" in survival
    cohort_create = spec["components"]["schemas"]["CohortCreate"]
    assert cohort_create["additionalProperties"] is False
    assert all("description" in p for p in cohort_create["properties"].values())
