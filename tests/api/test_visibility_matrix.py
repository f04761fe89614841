"""One visibility matrix through every surface: facets, patients, cohorts, runs, lineage and exports.

TCGA-CHOL is marked controlled in this module's private copy of the sample graph. A curator with the CHOL
grant saves a shared cohort of CHOL patients and exports it. Then each principal — the local operator
(``Scope.everything()``), admins, curators, viewers and an aggregate-only principal, with and without the
grant — asks every surface, and what it learns of CHOL must agree everywhere: either it sees CHOL on every
surface, or on none (and the aggregate-only principal sees suppressed counts and no records at all).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient
from sqlalchemy import select

from oncograph.access import Scope, set_project_controlled
from oncograph.access.policy import visible_run
from oncograph.cohorts import query
from oncograph.cohorts.provenance import visible_lineage
from oncograph.db import transaction
from oncograph.db.models import Run
from oncograph.embeddings.store import EmbeddingRow, store_embeddings
from oncograph.export.job import run_export
from oncograph.settings import Settings
from oncograph_api.app import create_app

pytestmark = pytest.mark.integration

CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}
MIN_CELL = 5
SLIDE = Path(__file__).resolve().parents[2] / "data" / "wsi" / "CMU-1-Small-Region.svs"


@dataclass(frozen=True)
class World:
    db: ApiDb
    client: TestClient
    owner: dict[str, str]
    cohort_id: int
    export_id: int
    chol_case: str
    chol_size: int
    harvest_run: int
    idc_run: int
    export_run: int
    slide_embedding: int


@pytest.fixture(scope="module")
def world(api_db: ApiDb, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with transaction(api_db.sessions) as s:
        set_project_controlled(s, "TCGA-CHOL", True)
    settings = Settings(
        database_url=api_db.url, min_cell_count=MIN_CELL, export_root=str(tmp_path_factory.mktemp("exports"))
    )
    client = TestClient(create_app(api_db.engine, settings), raise_server_exceptions=False)
    owner = api_db.user("mx-owner", "curator", grants=["TCGA-CHOL"])
    made = client.post("/cohorts", headers=owner, json={"name": "chol", "filters": CHOL})
    assert made.status_code == 201, made.text
    cohort = made.json()
    assert client.post(f"/cohorts/{cohort['id']}/share", headers=owner).status_code == 200
    started = client.post(f"/cohorts/{cohort['id']}/exports", headers=owner, json={"name": "chol-mx"})
    assert started.status_code == 202, started.text
    chol_case = api_db.scalar(
        "SELECT p.submitter_id FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-CHOL' ORDER BY p.submitter_id LIMIT 1"
    )
    harvest = api_db.scalar(
        "SELECT id FROM run WHERE transform = 'harvest_gdc' AND 'TCGA-CHOL' = ANY(projects) ORDER BY id LIMIT 1"
    )
    # the IDC import of every TCGA collection (tcga_chol among them): its run touched TCGA-CHOL's patients
    idc = api_db.scalar("SELECT min(id) FROM run WHERE transform = 'ingest_idc'")
    # the queued export, run by the real job path (a worker claims it), so its run exists
    run_export(api_db.sessions, started.json()["id"])
    export_run = api_db.scalar("SELECT max(id) FROM run WHERE transform = 'export_cohort'")
    assert export_run is not None
    # two CHOL patients with a slide embedding each (a real local slide: the thumbnail renders it)
    two = api_db.rows(
        "SELECT p.id, p.case_id::text FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-CHOL' ORDER BY p.submitter_id LIMIT 2"
    )
    with transaction(api_db.sessions) as s:
        store_embeddings(
            s,
            [
                EmbeddingRow(
                    r.id,
                    "data_file",
                    f"mx-slide-{i}",
                    "slide",
                    "mx-model",
                    "1",
                    [1.0, float(i), 0.5],
                    source_uri=str(SLIDE),
                )
                for i, r in enumerate(two)
            ],
        )
    slide_embedding = api_db.scalar(
        "SELECT id FROM embedding WHERE object_id = 'mx-slide-0' AND model = 'mx-model'"
    )
    yield World(
        api_db,
        client,
        owner,
        cohort["id"],
        started.json()["id"],
        chol_case,
        cohort["size"],
        harvest,
        idc,
        export_run,
        slide_embedding,
    )


# (name, role, CHOL grant, sees CHOL, sees the owner's export)
PRINCIPALS = [
    ("mx-admin", "admin", False, False, False),
    ("mx-admin-g", "admin", True, True, True),
    ("mx-curator", "curator", False, False, False),
    ("mx-curator-g", "curator", True, True, False),
    ("mx-viewer", "viewer", False, False, False),
    ("mx-viewer-g", "viewer", True, True, False),
]


def _listed_patients(client: TestClient, headers: dict[str, str]) -> int:
    body = client.get("/patients", headers=headers, params={"filters": json.dumps(CHOL)}).json()
    return int(body["total"])


def _run_ids(client: TestClient, headers: dict[str, str]) -> set[int]:
    out: set[int] = set()
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        body = client.get("/runs", headers=headers, params=params).json()
        out |= {r["id"] for r in body["data"]}
        cursor = body["next_cursor"]
        if not cursor:
            return out


@pytest.mark.parametrize(("name", "role", "granted", "sees", "sees_export"), PRINCIPALS)
def test_every_surface_agrees(
    world: World, name: str, role: str, granted: bool, sees: bool, sees_export: bool
) -> None:
    db, client = world.db, world.client
    headers = db.user(name, role, grants=["TCGA-CHOL"] if granted else [])

    facets = client.post("/facets", headers=headers, json={"filters": CHOL}).json()
    assert facets["total"] == (world.chol_size if sees else 0)
    projects = {p["project_id"] for p in client.get("/projects", headers=headers).json()["data"]}
    assert ("TCGA-CHOL" in projects) is sees
    assert _listed_patients(client, headers) == (world.chol_size if sees else 0)
    assert (client.get(f"/patients/{world.chol_case}", headers=headers).status_code == 200) is sees

    cohorts = {c["id"] for c in client.get("/cohorts", headers=headers).json()["data"]}
    assert (world.cohort_id in cohorts) is sees
    assert (client.get(f"/cohorts/{world.cohort_id}", headers=headers).status_code == 200) is sees

    runs = _run_ids(client, headers)
    assert (world.harvest_run in runs) is sees
    assert (world.idc_run in runs) is sees
    assert (client.get(f"/runs/{world.harvest_run}", headers=headers).status_code == 200) is sees
    assert (world.export_run in runs) is sees_export
    assert (client.get(f"/lineage/{world.chol_case}", headers=headers).status_code == 200) is sees

    exports = {e["id"] for e in client.get("/exports", headers=headers).json()["data"]}
    assert (world.export_id in exports) is sees_export
    assert (client.get(f"/exports/{world.export_id}", headers=headers).status_code == 200) is sees_export
    croissant = client.get(f"/exports/{world.export_id}/files/croissant.json", headers=headers)
    assert (croissant.status_code == 200) is sees_export

    survival = client.post("/survival", headers=headers, json={"filters": CHOL})
    assert survival.status_code == 200 and survival.json()["members"] == (world.chol_size if sees else 0)
    similar = client.get(
        f"/patients/{world.chol_case}/similar", headers=headers, params={"model": "mx-model"}
    )
    assert (similar.status_code == 200) is sees
    thumbnail = client.get(f"/embeddings/{world.slide_embedding}/thumbnail?max_px=64", headers=headers)
    assert (thumbnail.status_code == 200) is sees
    if sees:
        assert thumbnail.headers["content-type"] == "image/png" and thumbnail.content[:4] == b"\x89PNG"
        assert len(similar.json()["data"]) == 1
        detail = client.get(f"/patients/{world.chol_case}", headers=headers).json()
        (embedding,) = detail["embeddings"]
        assert embedding["id"] == world.slide_embedding and embedding["thumbnail"] is True
        assert embedding["source_uri"] is None and embedding["source_name"] == SLIDE.name
        assert str(SLIDE.parent) not in json.dumps(detail)  # no server path reaches a client


def test_the_owner_sees_its_own_export_and_run(world: World) -> None:
    client = world.client
    exports = {e["id"] for e in client.get("/exports", headers=world.owner).json()["data"]}
    assert world.export_id in exports
    assert world.export_run in _run_ids(client, world.owner)
    owner = world.db.scalar("SELECT principal_id FROM run WHERE id = :r", r=world.export_run)
    assert owner == world.db.scalar("SELECT id FROM principal WHERE name = 'mx-owner'")


def test_aggregate_only_sees_suppressed_counts_and_no_records(world: World) -> None:
    db, client = world.db, world.client
    headers = db.user("mx-aggregate", "aggregate")
    facets = client.post(
        "/facets", headers=headers, json={"facets": ["project.project_id"], "modality_matrix": True}
    ).json()
    counts = [b["count"] for b in facets["facets"][0]["buckets"]]
    assert all(c == f"<{MIN_CELL}" or (isinstance(c, int) and c >= MIN_CELL) for c in counts), counts
    assert f"<{MIN_CELL}" in counts  # the sample graph has projects of fewer than 5 patients
    assert "TCGA-CHOL" not in {b["key"] for b in facets["facets"][0]["buckets"]}
    listed = client.get("/projects", headers=headers).json()["data"]
    assert all(p["patients"] == f"<{MIN_CELL}" or p["patients"] >= MIN_CELL for p in listed)
    assert client.get("/fields", headers=headers).status_code == 200
    for method, path in [
        ("GET", "/patients"),
        ("GET", f"/patients/{world.chol_case}"),
        ("GET", "/cohorts"),
        ("GET", f"/cohorts/{world.cohort_id}"),
        ("GET", f"/cohorts/{world.cohort_id}/members"),
        ("GET", "/runs"),
        ("GET", f"/lineage/{world.chol_case}"),
        ("GET", "/exports"),
        ("GET", f"/exports/{world.export_id}/files/croissant.json"),
        ("GET", f"/embeddings/{world.slide_embedding}/thumbnail"),
        ("GET", f"/patients/{world.chol_case}/similar?model=mx-model"),
    ]:
        body = assert_problem(client.request(method, path, headers=headers), 403)
        assert "aggregate-only" in body["detail"]
    body = assert_problem(client.post("/survival", headers=headers, json={"filters": CHOL}), 403)
    assert "aggregate-only" in body["detail"]


def test_record_level_principals_get_exact_counts(world: World) -> None:
    """Suppression is for aggregate-only access; a viewer, who may list the patients anyway, counts exactly."""
    db, client = world.db, world.client
    headers = db.user("mx-exact", "viewer")
    one = {"op": "=", "content": {"field": "submitter_id", "value": "TCGA-BH-A0EA"}}
    assert client.post("/facets", headers=headers, json={"filters": one}).json()["total"] == 1
    assert client.get("/patients", headers=headers, params={"filters": json.dumps(one)}).json()["total"] == 1


def test_the_operator_sees_everything(world: World) -> None:
    everything = Scope.everything()
    with transaction(world.db.sessions) as s:
        conn = s.connection()
        assert query.count(conn, CHOL, everything) == world.chol_size
        assert visible_lineage(s, world.chol_case, everything)["records"]
        runs = set(
            s.execute(
                select(Run.id).where(visible_run(everything, principal_id=None, is_admin=True))
            ).scalars()
        )
        assert world.harvest_run in runs
