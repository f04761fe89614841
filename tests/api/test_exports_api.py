"""Exports through the REST API: a queued job (run by an export worker, here on a thread as ``oncograph
serve`` runs it) under the caller's scope, its status, progress and manifest, written only under the
caller's own folder of the server's export root."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from oncograph.export.worker import work
from oncograph.settings import Settings
from oncograph_api.app import create_app


@pytest.fixture()
def worker(api_db: ApiDb) -> Iterator[None]:
    """An export worker polling the API's database (what ``oncograph serve`` starts on a thread)."""
    stop = threading.Event()
    factory = sessionmaker(bind=api_db.engine, expire_on_commit=False)
    thread = threading.Thread(target=work, args=(factory,), kwargs={"stop": stop, "poll_seconds": 0.1})
    thread.start()
    yield
    stop.set()
    thread.join(timeout=120)


CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}


def _client(db: ApiDb, root: Path) -> TestClient:
    settings = Settings(database_url=db.url, export_root=str(root))
    return TestClient(create_app(db.engine, settings), raise_server_exceptions=False)


def _wait(client: TestClient, export_id: int, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(600):
        status = client.get(f"/exports/{export_id}", headers=headers).json()
        if status["status"] not in ("queued", "running"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"export {export_id} did not finish: {status}")


def test_export_job_lifecycle(api_db: ApiDb, tmp_path: Path, worker: None) -> None:
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
    assert job["status"] == "queued"
    # a name belongs to its principal: <root>/<principal>/<name>
    assert job["destination"] == str(tmp_path / "exp-curator" / "chol-v1") and job["cohort_version"] == 1
    done = _wait(client, job["id"], curator)
    assert done["status"] == "succeeded", done
    assert done["progress"]["stage"] == "published"
    manifest = client.get(f"/exports/{job['id']}/manifest", headers=curator).json()
    assert manifest == done["manifest"]
    assert manifest["cohort"]["member_hash"] == cohort["member_hash"]
    assert manifest["principal"]["name"] == "exp-curator"
    out = tmp_path / "exp-curator" / "chol-v1"
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert pq.read_table(out / "patients.parquet").num_rows == cohort["size"] == 51

    # others do not see it; the same name again is refused at once (409, no record) unless overwrite
    other = api_db.user("exp-other", "curator")
    assert_problem(client.get(f"/exports/{job['id']}", headers=other), 404)
    assert [e["id"] for e in client.get("/exports", headers=curator).json()["data"]] == [job["id"]]
    again = client.post(f"/cohorts/{cohort['id']}/exports", headers=curator, json={"name": "chol-v1"})
    assert "already holds an export" in assert_problem(again, 409)["detail"]
    assert [e["id"] for e in client.get("/exports", headers=curator).json()["data"]] == [job["id"]]
    # the default name is export-<id>, of the id the new record gets
    unnamed = client.post(f"/cohorts/{cohort['id']}/exports", headers=curator, json={})
    assert unnamed.status_code == 202, unnamed.text
    assert unnamed.json()["destination"] == str(tmp_path / "exp-curator" / f"export-{unnamed.json()['id']}")
    assert _wait(client, unnamed.json()["id"], curator)["status"] == "succeeded"


def test_export_needs_the_grant_for_controlled_members(api_db: ApiDb, tmp_path: Path, worker: None) -> None:
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
        assert pq.read_table(tmp_path / "exp-granted" / "g" / "patients.parquet").num_rows == 51
    finally:
        api_db.execute("UPDATE project SET controlled = false WHERE project_id = 'TCGA-CHOL'")


def _files_match(root: Path, manifest: dict[str, Any]) -> bool:
    return all(
        hashlib.sha256((root / e["path"]).read_bytes()).hexdigest() == e["sha256"] for e in manifest["files"]
    )


def test_another_principal_cannot_replace_an_export_by_name(
    api_db: ApiDb, tmp_path: Path, worker: None
) -> None:
    client = _client(api_db, tmp_path)
    ann = api_db.user("exp-ann", "curator")
    ben = api_db.user("exp-ben", "curator")
    cohort = client.post(
        "/cohorts", headers=ann, json={"name": "chol", "filters": CHOL, "shared": True}
    ).json()
    first = client.post(f"/cohorts/{cohort['id']}/exports", headers=ann, json={"name": "same"}).json()
    first = _wait(client, first["id"], ann)
    assert first["status"] == "succeeded", first
    # ben asks for the same name, with overwrite: it lands in his own folder, ann's export is untouched
    second = client.post(
        f"/cohorts/{cohort['id']}/exports", headers=ben, json={"name": "same", "overwrite": True, "seed": 9}
    ).json()
    second = _wait(client, second["id"], ben)
    assert second["status"] == "succeeded", second
    assert second["destination"] != first["destination"]
    assert first["destination"] == str(tmp_path / "exp-ann" / "same")
    assert _files_match(Path(first["destination"]), first["manifest"])
    assert client.get(f"/exports/{first['id']}", headers=ann).json()["status"] == "succeeded"


def test_overwrite_supersedes_the_earlier_record(api_db: ApiDb, tmp_path: Path, worker: None) -> None:
    client = _client(api_db, tmp_path)
    cy = api_db.user("exp-cy", "curator")
    cohort = client.post("/cohorts", headers=cy, json={"name": "chol", "filters": CHOL}).json()
    first = client.post(f"/cohorts/{cohort['id']}/exports", headers=cy, json={"name": "x"}).json()
    assert _wait(client, first["id"], cy)["status"] == "succeeded"
    second = client.post(
        f"/cohorts/{cohort['id']}/exports", headers=cy, json={"name": "x", "overwrite": True, "seed": 5}
    ).json()
    second = _wait(client, second["id"], cy)
    assert second["status"] == "succeeded", second
    # the replaced export's record no longer claims files that are gone
    old = client.get(f"/exports/{first['id']}", headers=cy).json()
    assert old["status"] == "superseded"
    assert_problem(client.get(f"/exports/{first['id']}/manifest", headers=cy), 404)
    assert _files_match(tmp_path / "exp-cy" / "x", second["manifest"])
    assert api_db.scalar("SELECT superseded_by_id FROM export WHERE id = :i", i=first["id"]) == second["id"]


def test_exports_of_a_cohort_hidden_from_the_caller_are_hidden(
    api_db: ApiDb, tmp_path: Path, worker: None
) -> None:
    client = _client(api_db, tmp_path)
    dee = api_db.user("exp-dee", "curator", grants=["TCGA-CHOL"])
    cohort = client.post("/cohorts", headers=dee, json={"name": "chol", "filters": CHOL}).json()
    job = client.post(f"/cohorts/{cohort['id']}/exports", headers=dee, json={"name": "h"}).json()
    assert _wait(client, job["id"], dee)["status"] == "succeeded"
    api_db.execute("UPDATE project SET controlled = true WHERE project_id = 'TCGA-CHOL'")
    try:
        api_db.execute(
            "DELETE FROM access_grant WHERE principal_id = (SELECT id FROM principal WHERE name = 'exp-dee')"
        )
        assert_problem(client.get(f"/exports/{job['id']}", headers=dee), 404)
        assert_problem(client.get(f"/exports/{job['id']}/manifest", headers=dee), 404)
        assert job["id"] not in [e["id"] for e in client.get("/exports", headers=dee).json()["data"]]
    finally:
        api_db.execute("UPDATE project SET controlled = false WHERE project_id = 'TCGA-CHOL'")


def test_bad_destinations_are_answered_at_post_and_leave_no_record(
    api_db: ApiDb, tmp_path: Path, worker: None
) -> None:
    client = _client(api_db, tmp_path)
    eve = api_db.user("exp-eve", "curator")
    cohort = client.post("/cohorts", headers=eve, json={"name": "chol", "filters": CHOL}).json()
    job = client.post(f"/cohorts/{cohort['id']}/exports", headers=eve, json={"name": "fx"}).json()
    assert _wait(client, job["id"], eve)["status"] == "succeeded"
    out = tmp_path / "exp-eve" / "fx"
    (out / "my_notes.txt").write_text("mine")
    (out / "models").mkdir()
    (out / "models" / "model.pt").write_bytes(b"weights")
    # overwrite of an export folder that holds files the export does not own: 409, naming them
    refused = client.post(
        f"/cohorts/{cohort['id']}/exports", headers=eve, json={"name": "fx", "overwrite": True}
    )
    detail = assert_problem(refused, 409)["detail"]
    assert "my_notes.txt" in detail and "models/" in detail and "move them out" in detail
    assert (out / "my_notes.txt").read_text() == "mine" and (out / "models" / "model.pt").is_file()
    # a name that is a file in the caller's folder: 422
    (tmp_path / "exp-eve" / "notes.txt").write_text("x")
    bad = client.post(f"/cohorts/{cohort['id']}/exports", headers=eve, json={"name": "notes.txt"})
    assert "is a file, not a folder" in assert_problem(bad, 422)["detail"]
    assert [e["id"] for e in client.get("/exports", headers=eve).json()["data"]] == [job["id"]]
    assert (
        api_db.scalar(
            "SELECT count(*) FROM export WHERE principal_id = "
            "(SELECT id FROM principal WHERE name = 'exp-eve')"
        )
        == 1
    )


def test_runs_of_the_local_operators_exports_are_not_everyones(api_db: ApiDb, tmp_path: Path) -> None:
    from oncograph.access import Scope, ensure_local_principal
    from oncograph.cohorts import saved
    from oncograph.db import transaction
    from oncograph.export.job import ExportOptions, create_export, run_export

    # what `oncograph cohort create` + `oncograph export` do: a private cohort of the local operator
    with transaction(api_db.sessions) as s:
        local = ensure_local_principal(s)
        made = saved.create_from_filter(
            s, name="operator's private", filters=CHOL, owner=local, scope=Scope.everything(local.name)
        )
        export_id = create_export(
            s,
            cohort_id=made.id,
            principal=local,
            destination=str(tmp_path / "operator-export"),
            options=ExportOptions(),
            scope=Scope.everything(local.name),
        ).id
    run_export(sessionmaker(bind=api_db.engine, expire_on_commit=False), export_id)
    run_id = api_db.scalar("SELECT run_id FROM export WHERE id = :e", e=export_id)

    client = _client(api_db, tmp_path)
    viewer = api_db.user("runs-viewer")
    curator = api_db.user("runs-curator", "curator")
    admin = api_db.user("runs-admin", "admin", grants=["TCGA-CHOL"])
    for headers in (viewer, curator):
        listed = client.get("/runs", headers=headers, params={"transform": "export_cohort", "limit": 500})
        assert listed.status_code == 200, listed.text
        assert run_id not in [r["id"] for r in listed.json()["data"]]
        assert_problem(client.get(f"/runs/{run_id}", headers=headers), 404)
    listed = client.get("/runs", headers=admin, params={"transform": "export_cohort", "limit": 500}).json()
    assert run_id in [r["id"] for r in listed["data"]]
    shown = client.get(f"/runs/{run_id}", headers=admin)
    assert shown.status_code == 200 and shown.json()["parameters"]["cohort_id"] == made.id
    # the run names the export's owner (the local operator), never "nobody" (everyone's)
    assert api_db.scalar("SELECT principal_id FROM run WHERE id = :r", r=run_id) == local.id
