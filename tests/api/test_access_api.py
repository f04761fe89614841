"""Controlled access over HTTP: TCGA-CHOL is marked controlled and one BRCA patient's files controlled (in this
module's private copy of the sample graph). Without a grant nothing of them is listed, counted, found or
shown; with a grant everything is."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient

from oncograph.access import set_project_controlled
from oncograph.db import transaction

pytestmark = pytest.mark.integration

CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}
FILE_CASE = "TCGA-AN-A046"  # a TCGA-BRCA patient with files


@pytest.fixture(scope="module")
def controlled(api_db: ApiDb) -> Iterator[ApiDb]:
    with transaction(api_db.sessions) as s:
        set_project_controlled(s, "TCGA-CHOL", True)
    api_db.execute(
        "UPDATE data_file SET access = 'controlled' WHERE id IN (SELECT fp.file_id FROM file_patient fp "
        "JOIN patient p ON p.id = fp.patient_id WHERE p.submitter_id = :s) AND id % 2 = 0",
        s=FILE_CASE,
    )
    yield api_db


def chol_cases(db: ApiDb) -> list[str]:
    return [
        r.submitter_id
        for r in db.rows(
            "SELECT p.submitter_id FROM patient p JOIN project pr ON pr.id = p.project_id "
            "WHERE pr.project_id = 'TCGA-CHOL' AND p.retired_release_id IS NULL ORDER BY p.submitter_id"
        )
    ]


def all_patients(client: TestClient, headers: dict[str, str], filters: object = None) -> list[str]:
    out: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        if filters is not None:
            params["filters"] = json.dumps(filters)
        body = client.get("/patients", headers=headers, params=params).json()
        out += [p["submitter_id"] for p in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            return out


def test_without_a_grant_a_controlled_project_is_invisible(controlled: ApiDb) -> None:
    db = controlled
    client = db.client()
    viewer = db.user("acc-nogrant")
    chol = chol_cases(db)
    total = db.scalar("SELECT count(*) FROM patient WHERE retired_release_id IS NULL")
    assert len(chol) == 51

    projects = {p["project_id"] for p in client.get("/projects", headers=viewer).json()["data"]}
    assert "TCGA-CHOL" not in projects and "TCGA-BRCA" in projects
    listed = all_patients(client, viewer)
    assert len(listed) == total - len(chol) and not set(chol) & set(listed)
    assert client.get("/patients", headers=viewer, params={"filters": json.dumps(CHOL)}).json()["total"] == 0

    facets = client.post(
        "/facets", headers=viewer, json={"facets": ["project.project_id"], "modality_matrix": True}
    )
    body = facets.json()
    assert body["total"] == total - len(chol)
    assert "TCGA-CHOL" not in {b["key"] for b in body["facets"][0]["buckets"]}
    assert body["modality_matrix"]["total"] == total - len(chol)
    assert client.post("/facets", headers=viewer, json={"filters": CHOL}).json()["total"] == 0

    # not found, exactly like an id that does not exist (no existence leak)
    hidden = assert_problem(client.get(f"/patients/{chol[0]}", headers=viewer), 404)
    missing = assert_problem(client.get("/patients/TCGA-ZZ-ZZZZ", headers=viewer), 404)
    assert hidden["title"] == missing["title"] and hidden.keys() == missing.keys()
    assert_problem(client.get(f"/lineage/{chol[0]}", headers=viewer), 404)
    assert_problem(client.get("/lineage/TCGA-CHOL", headers=viewer), 404)

    # an id list naming hidden patients resolves only the visible ones
    curator = db.user("acc-nogrant-curator", "curator")
    made = client.post("/cohorts", headers=curator, json={"name": "mixed", "ids": [chol[0], FILE_CASE]})
    assert made.status_code == 201, made.text
    assert made.json()["size"] == 1 and made.json()["latest"]["details"]["unresolved"] == [chol[0]]
    assert_problem(client.post("/cohorts", headers=curator, json={"name": "hidden", "ids": chol[:3]}), 422)
    assert client.post("/cohorts", headers=curator, json={"name": "f", "filters": CHOL}).json()["size"] == 0


def test_controlled_files_are_hidden_without_a_grant(controlled: ApiDb) -> None:
    db = controlled
    client = db.client()
    files = db.rows(
        "SELECT f.file_id::text, f.access FROM file_patient fp JOIN patient p ON p.id = fp.patient_id "
        "JOIN data_file f ON f.id = fp.file_id WHERE p.submitter_id = :s AND f.retired_release_id IS NULL",
        s=FILE_CASE,
    )
    open_files = {r.file_id for r in files if r.access != "controlled"}
    assert open_files and len(open_files) < len(files)
    viewer = db.user("acc-files")
    shown = client.get(f"/patients/{FILE_CASE}", headers=viewer).json()["files"]
    assert {f["file_id"] for f in shown} == open_files
    # facets over file fields count only visible files
    facet = client.post(
        "/facets",
        headers=viewer,
        json={
            "filters": {"op": "=", "content": {"field": "submitter_id", "value": FILE_CASE}},
            "facets": ["files.access"],
        },
    ).json()["facets"][0]
    assert "controlled" not in {b["key"] for b in facet["buckets"]}

    granted = db.user("acc-files-granted", grants=["TCGA-BRCA"])
    shown = client.get(f"/patients/{FILE_CASE}", headers=granted).json()["files"]
    assert {f["file_id"] for f in shown} == {r.file_id for r in files}


def test_with_a_grant_the_project_is_visible(controlled: ApiDb) -> None:
    db = controlled
    client = db.client()
    granted = db.user("acc-granted", "curator", grants=["TCGA-CHOL"])
    chol = chol_cases(db)
    projects = {p["project_id"]: p for p in client.get("/projects", headers=granted).json()["data"]}
    assert projects["TCGA-CHOL"]["patients"] == len(chol) and projects["TCGA-CHOL"]["controlled"] is True
    assert all_patients(client, granted, CHOL) == chol
    detail = client.get(f"/patients/{chol[0]}", headers=granted)
    assert detail.status_code == 200 and detail.json()["project"]["project_id"] == "TCGA-CHOL"
    assert client.get(f"/lineage/{chol[0]}", headers=granted).status_code == 200
    assert client.post("/facets", headers=granted, json={"filters": CHOL}).json()["total"] == len(chol)

    # a cohort made under the grant and shared: to a viewer without the grant it does not exist (its members,
    # their count and the cohort itself would reveal controlled patients)
    made = client.post(
        "/cohorts", headers=granted, json={"name": "chol+1", "ids": [*chol[:5], FILE_CASE], "shared": True}
    )
    assert made.status_code == 201 and made.json()["size"] == 6
    cohort = made.json()["id"]
    viewer = db.user("acc-shared-viewer")
    for path in ("", "/members", "/survival", "/diff?from=1"):
        assert client.get(f"/cohorts/{cohort}{path}", headers=viewer).status_code == 404, path
    assert cohort not in {c["id"] for c in client.get("/cohorts", headers=viewer).json()["data"]}
    full = client.get(f"/cohorts/{cohort}/members", headers=granted).json()
    assert len(full["data"]) == 6
