"""A cohort's life through HTTP, with every expected value computed a second way (plain SQL, Python sets, the
bundled real GDC portal export read with ``csv``, the survival core, numpy)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient

from oncograph.cohorts.survival import kaplan_meier
from oncograph.db import transaction
from oncograph.embeddings import EmbeddingRow, store_embeddings

pytestmark = pytest.mark.integration

LIHC_EXPORT = (
    Path(__file__).resolve().parents[2]
    / "data/gdc/gdc_portal_exports/gdc_clinical_TCGA-LIHC_portal_v1_2020s.tsv"
)
LUAD_COAD = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-LUAD", "TCGA-COAD"]}}
SQL_PROJECTS = (
    "SELECT p.case_id::text FROM patient p JOIN project pr ON pr.id = p.project_id "
    "WHERE p.retired_release_id IS NULL AND pr.project_id = ANY(:projects)"
)


def members(client: TestClient, headers: dict[str, str], cohort: int, *, limit: int = 1000) -> list[str]:
    out: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"after": after} if after is not None else {})}
        response = client.get(f"/cohorts/{cohort}/members", headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        out += [m["case_id"] for m in body["data"]]
        after = body["next_after"]
        if after is None:
            return out


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_cohort_lifecycle(api_db: ApiDb) -> None:
    client = api_db.client()
    alice = api_db.user("alice", "curator")
    bob = api_db.user("bob", "curator")
    vic = api_db.user("vic", "viewer")

    # -- from a filter
    luad_coad = {r.case_id for r in api_db.rows(SQL_PROJECTS, projects=["TCGA-LUAD", "TCGA-COAD"])}
    a = created(client.post("/cohorts", headers=alice, json={"name": "LUAD+COAD", "filters": LUAD_COAD}))
    assert a["size"] == len(luad_coad) > 0 and a["kind"] == "filter" and a["owner"] == "alice"
    assert a["latest"]["version"] == 1 and a["latest"]["scope"]["principal"] == "alice"
    # members page by keyset: small pages, no duplicates, exactly the members
    paged = members(client, alice, a["id"], limit=7)
    assert len(paged) == len(set(paged)) and set(paged) == luad_coad

    # -- from ids (barcodes and a UUID; one unknown)
    some = api_db.rows(SQL_PROJECTS + " ORDER BY p.case_id LIMIT 4", projects=["TCGA-LUAD", "TCGA-BRCA"])
    barcodes = [
        api_db.scalar("SELECT submitter_id FROM patient WHERE case_id::text = :c", c=r.case_id)
        for r in some[:3]
    ]
    ids = [*barcodes, some[3].case_id, "TCGA-ZZ-0000"]
    b = created(
        client.post("/cohorts", headers=alice, json={"name": "picked", "ids": ids, "description": "d"})
    )
    assert b["size"] == 4 and b["latest"]["details"]["unresolved"] == ["TCGA-ZZ-0000"]
    assert set(members(client, alice, b["id"])) == {r.case_id for r in some}

    # -- from an uploaded file: the real GDC portal export (TSV with a case_id column), as a multipart form
    with LIHC_EXPORT.open(newline="") as fh:
        exported = {row["case_id"] for row in csv.DictReader(fh, delimiter="\t")}
    known = {
        r.case_id
        for r in api_db.rows(
            "SELECT case_id::text FROM patient WHERE case_id::text = ANY(:i)", i=list(exported)
        )
    }
    c = created(
        client.post(
            "/cohorts/upload",
            headers=alice,
            files={"file": (LIHC_EXPORT.name, LIHC_EXPORT.read_bytes(), "text/tab-separated-values")},
            data={"name": "LIHC export"},
        )
    )
    assert c["name"] == "LIHC export" and c["size"] == len(known) > 0
    assert c["definition"]["source"] == f"upload:{LIHC_EXPORT.name}"
    # ... and as a plain-text body
    text_upload = created(
        client.post(
            "/cohorts/upload",
            headers={**alice, "content-type": "text/plain"},
            params={"name": "typed"},
            content="\n".join(barcodes).encode(),
        )
    )
    assert text_upload["size"] == 3
    assert_problem(client.post("/cohorts/upload?name=x", headers=alice, content=b"case_id\n"), 422)
    assert_problem(client.post("/cohorts/upload?name=x", headers=alice, content=b"x" * (21 * 2**20)), 413)
    assert_problem(
        client.post("/cohorts", headers=alice, json={"name": "both", "filters": {}, "ids": ["x"]}), 422
    )

    # -- visibility between users, sharing
    names = {x["name"] for x in client.get("/cohorts", headers=alice).json()["data"]}
    assert names == {"LUAD+COAD", "picked", "LIHC export", "typed"}
    assert client.get("/cohorts", headers=bob).json()["count"] == 0
    assert_problem(client.get(f"/cohorts/{a['id']}", headers=bob), 404)
    assert_problem(client.post(f"/cohorts/{a['id']}/share", headers=bob, json={"shared": True}), 404)
    shared = client.post(f"/cohorts/{a['id']}/share", headers=alice, json={"shared": True})
    assert shared.status_code == 200 and shared.json()["shared"] is True
    assert [x["id"] for x in client.get("/cohorts", headers=bob).json()["data"]] == [a["id"]]
    assert [x["id"] for x in client.get("/cohorts", headers=vic).json()["data"]] == [a["id"]]
    assert set(members(client, vic, a["id"])) == luad_coad
    assert_problem(client.delete(f"/cohorts/{a['id']}", headers=bob), 403)
    assert_problem(client.post(f"/cohorts/{a['id']}/refresh", headers=bob), 403)

    # -- set operations over three cohorts, against Python set arithmetic
    sets = {x["id"]: set(members(client, alice, x["id"])) for x in (a, b, c)}
    operands = [a["id"], b["id"], c["id"]]
    expected = {
        "union": sets[a["id"]] | sets[b["id"]] | sets[c["id"]],
        "intersection": sets[a["id"]] & sets[b["id"]] & sets[c["id"]],
        "difference": sets[a["id"]] - sets[b["id"]] - sets[c["id"]],
    }
    for op, want in expected.items():
        made = created(
            client.post(
                "/cohorts/set-operations", headers=alice, json={"op": op, "cohorts": operands, "name": op}
            )
        )
        assert made["kind"] == "set" and made["size"] == len(want)
        assert set(members(client, alice, made["id"])) == want
    # bob may combine the shared cohort, not alice's private one
    assert_problem(
        client.post(
            "/cohorts/set-operations",
            headers=bob,
            json={"op": "union", "cohorts": [a["id"], b["id"]], "name": "x"},
        ),
        404,
    )

    # -- refresh after a re-harvest retired one member: a new version, and the diff says who left
    gone = sorted(luad_coad)[0]
    api_db.execute(
        "UPDATE patient SET retired_release_id = (SELECT max(id) FROM source_release WHERE source = 'gdc') "
        "WHERE case_id::text = :c",
        c=gone,
    )
    refreshed = client.post(f"/cohorts/{a['id']}/refresh", headers=alice)
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["cohort"]["versions"] == 2 and body["cohort"]["size"] == len(luad_coad) - 1
    assert body["diff"]["removed"] == [gone] and body["diff"]["added"] == []
    assert body["diff"]["unchanged"] == len(luad_coad) - 1
    diff = client.get(f"/cohorts/{a['id']}/diff", headers=bob, params={"from": 1, "to": 2}).json()
    assert (diff["from_version"], diff["to_version"], diff["removed"]) == (1, 2, [gone])
    assert client.get(f"/cohorts/{a['id']}/diff?from=1", headers=alice).json()["removed"] == [gone]
    assert_problem(client.get(f"/cohorts/{a['id']}/diff?from=9", headers=alice), 404)
    old = client.get(
        f"/cohorts/{a['id']}/members", headers=alice, params={"version": 1, "limit": 10_000}
    ).json()
    assert old["version"] == 1 and old["total"] == len(luad_coad) and len(old["data"]) == len(luad_coad)
    # a refresh that changes nothing makes no version
    again = client.post(f"/cohorts/{a['id']}/refresh", headers=alice).json()
    assert again["cohort"]["versions"] == 2 and again["diff"]["removed"] == []

    # -- delete: gone for everyone
    assert client.delete(f"/cohorts/{a['id']}", headers=alice).status_code == 204
    for who in (alice, bob):
        assert_problem(client.get(f"/cohorts/{a['id']}", headers=who), 404)
        assert_problem(client.get(f"/cohorts/{a['id']}/members", headers=who), 404)
    assert a["id"] not in {x["id"] for x in client.get("/cohorts", headers=alice).json()["data"]}


def test_survival_matches_the_core(api_db: ApiDb) -> None:
    client = api_db.client()
    carol = api_db.user("carol", "curator")
    filters = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-LIHC", "TCGA-CHOL"]}}
    cohort = created(client.post("/cohorts", headers=carol, json={"name": "liver", "filters": filters}))
    ids = [
        r.id
        for r in api_db.rows(
            SQL_PROJECTS.replace("p.case_id::text", "p.id") + " ORDER BY p.id",
            projects=["TCGA-LIHC", "TCGA-CHOL"],
        )
    ]

    whole = client.get(f"/cohorts/{cohort['id']}/survival", headers=carol).json()
    with api_db.engine.connect() as conn:
        core = kaplan_meier(conn, {"all": ids})
    assert whole["members"] == len(ids) and whole["group_by"] is None
    assert whole["result"] == core.model_dump(mode="json")

    # by a nested field: a member goes into the group of each stage it has; none: "(missing)"
    stages: dict[str, set[int]] = {}
    for pid, stage in api_db.rows(
        "SELECT DISTINCT patient_id, stage FROM diagnosis WHERE retired_release_id IS NULL AND "
        "stage IS NOT NULL AND patient_id = ANY(:ids)",
        ids=ids,
    ):
        stages.setdefault(stage, set()).add(pid)
    ordered = sorted(stages.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    kept = dict(ordered[:4])
    staged = set().union(*stages.values())
    missing = [i for i in ids if i not in staged]
    groups = {k: sorted(v) for k, v in kept.items()} | ({"(missing)": missing} if missing else {})
    response = client.get(
        f"/cohorts/{cohort['id']}/survival",
        headers=carol,
        params={"group_by": "diagnoses.stage", "max_groups": 4},
    )
    assert response.status_code == 200, response.text
    by_stage = response.json()
    with api_db.engine.connect() as conn:
        core = kaplan_meier(conn, groups)
    assert by_stage["result"] == core.model_dump(mode="json")
    assert [g["name"] for g in by_stage["result"]["groups"]] == list(groups)
    assert by_stage["omitted_groups"] == len(stages) - 4 and by_stage["ungrouped"] == len(missing)
    assert by_stage["result"]["logrank_p_value"] is not None
    assert "index date" in by_stage["result"]["rules"]

    # the same filter before anything is saved (the cohort builder's plot): the same curves
    unsaved = client.post(
        "/survival", headers=carol, json={"filters": filters, "group_by": "diagnoses.stage", "max_groups": 4}
    )
    assert unsaved.status_code == 200, unsaved.text
    assert unsaved.json()["result"] == by_stage["result"] and unsaved.json()["members"] == len(ids)
    assert_problem(
        client.post("/survival", headers=carol, json={"filters": filters, "group_by": "nope"}), 422
    )

    bad = assert_problem(
        client.get(f"/cohorts/{cohort['id']}/survival?group_by=diagnoses.age_at_diagnosis", headers=carol),
        422,
    )
    assert bad["errors"][0]["loc"] == "query.group_by"
    assert_problem(client.get(f"/cohorts/{cohort['id']}/survival?group_by=nope", headers=carol), 422)


def test_similar_patients_in_a_cohort(api_db: ApiDb) -> None:
    client = api_db.client()
    dan = api_db.user("dan", "curator")
    filters = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}
    cohort = created(client.post("/cohorts", headers=dan, json={"name": "chol", "filters": filters}))
    patients = api_db.rows(
        "SELECT p.id, p.case_id::text, p.submitter_id FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-CHOL' ORDER BY p.id LIMIT 8"
    )
    vectors = {r.id: [math.cos(r.id * (j + 1)) for j in range(6)] for r in patients}
    with transaction(api_db.sessions) as s:
        store_embeddings(
            s,
            [
                EmbeddingRow(r.id, "patient", r.case_id, "clinical_text", "test-model", "1", vectors[r.id])
                for r in patients
            ],
        )
    query = patients[0]

    def cosine_distance(u: list[float], v: list[float]) -> float:
        dot = sum(x * y for x, y in zip(u, v, strict=True))
        return 1 - dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))

    expected = sorted(patients[1:], key=lambda r: cosine_distance(vectors[query.id], vectors[r.id]))[:3]
    response = client.get(
        f"/cohorts/{cohort['id']}/similar",
        headers=dan,
        params={"patient": query.submitter_id, "model": "test-model", "k": 3},
    )
    assert response.status_code == 200, response.text
    got = response.json()["data"]
    assert [n["case_id"] for n in got] == [r.case_id for r in expected]
    for n, r in zip(got, expected, strict=True):
        assert n["distance"] == pytest.approx(cosine_distance(vectors[query.id], vectors[r.id]), abs=1e-5)
    # across the whole graph: the same neighbours here (only these patients have the model's embeddings)
    across = client.get(
        f"/patients/{query.submitter_id}/similar", headers=dan, params={"model": "test-model", "k": 3}
    )
    assert across.status_code == 200, across.text
    assert [n["case_id"] for n in across.json()["data"]] == [r.case_id for r in expected]
    assert_problem(client.get("/patients/TCGA-ZZ-0000/similar?model=test-model", headers=dan), 404)
    assert_problem(client.get(f"/patients/{query.submitter_id}/similar?model=none", headers=dan), 404)
    assert_problem(
        client.get(
            f"/cohorts/{cohort['id']}/similar",
            headers=dan,
            params={"patient": query.submitter_id, "model": "none"},
        ),
        404,
    )
    assert_problem(
        client.get(
            f"/cohorts/{cohort['id']}/similar",
            headers=dan,
            params={"patient": "TCGA-ZZ-0000", "model": "test-model"},
        ),
        404,
    )
    # the embeddings show in the patient's detail, without the vector
    (embedding,) = client.get(f"/patients/{query.submitter_id}", headers=dan).json()["embeddings"]
    assert embedding["model"] == "test-model" and embedding["dim"] == 6 and "vector" not in embedding
