"""Exports through the REST API: an asynchronous job under the caller's scope, its status, progress and
manifest, written only under the server's export root."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient

from oncograph.settings import Settings
from oncograph_api.app import create_app

CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}


def _client(db: ApiDb, root: Path) -> TestClient:
    settings = Settings(database_url=db.url, export_root=str(root))
    return TestClient(create_app(db.engine, settings), raise_server_exceptions=False)


def _wait(client: TestClient, export_id: int, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):
        status = client.get(f"/exports/{export_id}", headers=headers).json()
        if status["status"] in ("succeeded", "failed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"export {export_id} did not finish: {status}")


def test_export_job_lifecycle(api_db: ApiDb, tmp_path: Path) -> None:
    client = _client(api_db, tmp_path)
    curator = api_db.user("exp-curator", "curator")
    viewer = api_db.user("exp-viewer")
    cohort = client.post("/cohorts", headers=curator, json={"name": "chol", "filters": CHOL}).json()

    # viewers may not export; nobody chooses a server path
    assert client.post(f"/cohorts/{cohort['id']}/exports", headers=viewer, json={}).status_code == 403
    bad = client.post(f"/cohorts/{cohort['id']}/exports", headers=curator, json={"name": "../../etc"})
    assert_problem(bad, 422)
    bad = client.post(f"/cohorts/{cohort['id']}/exports", headers=curator, json={"ratios": [0.5, 0.5, 0.5]})
    assert_problem(bad, 422)
    assert "adding up to 1" in bad.json()["detail"]

    started = client.post(
        f"/cohorts/{cohort['id']}/exports", headers=curator, json={"name": "chol-v1", "seed": 4}
    )
    assert started.status_code == 202, started.text
    job = started.json()
    assert job["destination"] == str(tmp_path / "chol-v1") and job["cohort_version"] == 1
    done = _wait(client, job["id"], curator)
    assert done["status"] == "succeeded", done
    assert done["progress"]["stage"] == "published"
    manifest = client.get(f"/exports/{job['id']}/manifest", headers=curator).json()
    assert manifest == done["manifest"]
    assert manifest["cohort"]["member_hash"] == cohort["member_hash"]
    assert manifest["principal"]["name"] == "exp-curator"
    out = tmp_path / "chol-v1"
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert pq.read_table(out / "patients.parquet").num_rows == cohort["size"] == 51

    # others do not see it; the same name again is a recorded failure unless overwrite
    other = api_db.user("exp-other", "curator")
    assert_problem(client.get(f"/exports/{job['id']}", headers=other), 404)
    assert [e["id"] for e in client.get("/exports", headers=curator).json()["data"]] == [job["id"]]
    again = client.post(f"/cohorts/{cohort['id']}/exports", headers=curator, json={"name": "chol-v1"}).json()
    failed = _wait(client, again["id"], curator)
    assert failed["status"] == "failed" and "already holds an export" in failed["error"]
    assert_problem(client.get(f"/exports/{again['id']}/manifest", headers=curator), 404)


def test_export_needs_the_grant_for_controlled_members(api_db: ApiDb, tmp_path: Path) -> None:
    client = _client(api_db, tmp_path)
    api_db.execute("UPDATE project SET controlled = true WHERE project_id = 'TCGA-CHOL'")
    try:
        granted = api_db.user("exp-granted", "curator", grants=["TCGA-CHOL"])
        cohort = client.post(
            "/cohorts", headers=granted, json={"name": "chol", "filters": CHOL, "shared": True}
        ).json()
        assert cohort["size"] == 51
        # a curator without the grant cannot even see the shared cohort, so cannot export it
        plain = api_db.user("exp-plain", "curator")
        assert_problem(client.post(f"/cohorts/{cohort['id']}/exports", headers=plain, json={}), 404)
        job = client.post(f"/cohorts/{cohort['id']}/exports", headers=granted, json={"name": "g"}).json()
        assert _wait(client, job["id"], granted)["status"] == "succeeded"
        assert pq.read_table(tmp_path / "g" / "patients.parquet").num_rows == 51
    finally:
        api_db.execute("UPDATE project SET controlled = false WHERE project_id = 'TCGA-CHOL'")
