"""Patients over HTTP: keyset paging over every sample patient against plain SQL, and one patient's whole graph
against per-table counts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api.harness import ApiDb, assert_problem
from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

BRCA = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-BRCA"]}}


def page_all(client: TestClient, headers: dict[str, str], **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every row of a listing, following next_cursor; also the number of requests."""
    rows: list[dict[str, Any]] = []
    cursor = None
    requests = 0
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/patients", headers=headers, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        requests += 1
        assert len(body["data"]) <= params.get("limit", 100)
        rows += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows, requests


def case_ids(db: ApiDb, sql: str) -> list[str]:
    """The ``case_id`` column of ``sql`` on the test database, in its order."""
    return [r.case_id for r in db.rows(sql)]


def test_keyset_paging_visits_every_patient_once_in_order(api_db: ApiDb) -> None:
    client, headers = api_db.client(), api_db.user("pat-viewer")
    expected = case_ids(
        api_db, "SELECT case_id::text FROM patient WHERE retired_release_id IS NULL ORDER BY submitter_id, id"
    )
    assert len(expected) > 1500
    rows, requests = page_all(client, headers, limit=97)
    assert [r["case_id"] for r in rows] == expected  # no duplicate, no gap, the documented order
    assert requests == -(-len(expected) // 97)
    first = client.get("/patients", headers=headers, params={"limit": 1}).json()
    assert first["total"] == len(expected)


def test_paging_a_sort_with_ties_and_missing_values(api_db: ApiDb) -> None:
    client, headers = api_db.client(), api_db.user("pat-sorter")
    # descending age at first diagnosis: many ties and many patients without a value (they come last)
    expected = case_ids(
        api_db,
        "SELECT p.case_id::text FROM patient p LEFT JOIN LATERAL (SELECT min(age_at_diagnosis) AS age "
        "FROM diagnosis d WHERE d.patient_id = p.id AND d.retired_release_id IS NULL) a ON true "
        "WHERE p.retired_release_id IS NULL ORDER BY a.age DESC NULLS LAST, p.id",
    )
    rows, _ = page_all(client, headers, limit=250, sort="-age_at_diagnosis")
    assert [r["case_id"] for r in rows] == expected
    ages = [r["age_at_diagnosis"] for r in rows]
    assert None in ages and ages.index(None) > 0
    assert all(a is None for a in ages[ages.index(None) :])

    # a filter and another sort: BRCA patients by project then by case UUID
    brca = case_ids(
        api_db,
        "SELECT p.case_id::text FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-BRCA' AND p.retired_release_id IS NULL ORDER BY p.case_id",
    )
    rows, _ = page_all(client, headers, limit=100, sort="case_id", filters=json.dumps(BRCA))
    assert [r["case_id"] for r in rows] == brca
    assert {r["project_id"] for r in rows} == {"TCGA-BRCA"}


def test_cursor_and_sort_errors(api_db: ApiDb) -> None:
    client, headers = api_db.client(), api_db.user("pat-errors")
    cursor = client.get("/patients", headers=headers, params={"limit": 5}).json()["next_cursor"]
    # a cursor is bound to its filters and sort
    other = assert_problem(
        client.get("/patients", headers=headers, params={"cursor": cursor, "sort": "-submitter_id"}), 422
    )
    assert other["errors"][0]["loc"] == "query.cursor"
    assert_problem(client.get("/patients", headers=headers, params={"cursor": "!!"}), 422)
    assert assert_problem(client.get("/patients?sort=password", headers=headers), 422)["errors"][0][
        "loc"
    ] == ("query.sort")
    bad = assert_problem(client.get("/patients", headers=headers, params={"filters": '{"op": "in"}'}), 422)
    assert bad["errors"][0]["loc"].startswith("query.filters")


def count(api_db: ApiDb, table: str, case: str) -> int:
    return int(
        api_db.scalar(
            f"SELECT count(*) FROM {table} t JOIN patient p ON p.id = t.patient_id "
            "WHERE p.submitter_id = :s AND t.retired_release_id IS NULL",
            s=case,
        )
    )


def test_patient_detail_is_the_whole_graph_with_lineage(api_db: ApiDb) -> None:
    client, headers = api_db.client(), api_db.user("pat-detail")
    case = "TCGA-AN-A046"  # BRCA: diagnoses with treatments, samples down to aliquots and slides, files, IDC
    response = client.get(f"/patients/{case}", headers=headers)
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["patient"]["submitter_id"] == case
    assert detail["project"]["project_id"] == "TCGA-BRCA" and detail["project"]["program"] == "TCGA"
    assert len(detail["diagnoses"]) == count(api_db, "diagnosis", case) > 0
    treatments = sum(len(d["treatments"]) for d in detail["diagnoses"]) + len(
        detail["treatments_without_diagnosis"]
    )
    assert treatments == count(api_db, "treatment", case)
    assert len(detail["exposures"]) == count(api_db, "exposure", case)
    assert len(detail["samples"]) == count(api_db, "sample", case) > 0
    portions = [p for s in detail["samples"] for p in s["portions"]]
    assert len(portions) == count(api_db, "portion", case)
    aliquots = [al for p in portions for a in p["analytes"] for al in a["aliquots"]]
    assert len(aliquots) == count(api_db, "aliquot", case) > 0
    assert len([sl for p in portions for sl in p["slides"]]) == count(api_db, "slide", case)
    files = api_db.scalar(
        "SELECT count(*) FROM file_patient fp JOIN patient p ON p.id = fp.patient_id JOIN data_file f ON "
        "f.id = fp.file_id WHERE p.submitter_id = :s AND f.retired_release_id IS NULL",
        s=case,
    )
    assert len(detail["files"]) == files > 0
    assert all(f["file_id"] and "sample_ids" in f for f in detail["files"])

    # every graph record carries its lineage, resolved to names
    def lineages(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, list):
            return [x for item in node for x in lineages(item)]
        if isinstance(node, dict):
            own = [node["lineage"]] if "lineage" in node else []
            return own + [x for k, v in node.items() if k != "lineage" for x in lineages(v)]
        return []

    found = lineages(detail)
    graph = [lin for lin in found if lin.get("source_document_id") is not None]
    assert len(graph) > 30
    assert all(lin["source"] and lin["release"] and lin["first_seen"] and lin["last_seen"] for lin in graph)
    assert all(lin["retired"] is None for lin in graph)
    doc = detail["diagnoses"][0]["lineage"]
    assert (
        api_db.scalar("SELECT entity_id FROM source_document WHERE id = :d", d=doc["source_document_id"])
        == (doc["entity_id"])
    )
    # the internal row ids and foreign keys stay inside
    assert "id" not in detail["patient"] and "patient_id" not in detail["diagnoses"][0]

    # the same patient by its case UUID
    by_uuid = client.get(f"/patients/{detail['patient']['case_id']}", headers=headers).json()
    assert by_uuid["patient"]["submitter_id"] == case


def test_patient_detail_imaging_from_idc(api_db: ApiDb) -> None:
    client, headers = api_db.client(), api_db.user("pat-imaging")
    case = "TCGA-BH-A0EA"
    detail = client.get(f"/patients/{case}", headers=headers).json()
    assert len(detail["diagnoses"]) == count(api_db, "diagnosis", case)
    series = api_db.rows(
        "SELECT s.series_instance_uid, st.study_instance_uid FROM identity_link l JOIN patient p ON "
        "p.id = l.patient_id JOIN idc_patient ip ON ip.collection_id = l.namespace AND ip.patient_id = "
        "l.external_id JOIN imaging_series s ON s.idc_patient_id = ip.id JOIN imaging_study st ON "
        "st.id = s.imaging_study_id WHERE p.submitter_id = :s AND l.commons = 'idc' "
        "AND s.retired_release_id IS NULL",
        s=case,
    )
    assert series, "the sample graph links this case to IDC"
    (idc,) = detail["imaging"]
    assert idc["collection_id"] == "tcga_brca" and idc["patient_id"] == case
    got = {
        (s["series_instance_uid"], st["study_instance_uid"]) for st in idc["studies"] for s in st["series"]
    }
    assert got == {(r.series_instance_uid, r.study_instance_uid) for r in series}
    for study in idc["studies"]:
        assert study["series_count"] == len(study["series"])
        assert study["modalities"] == sorted({s["modality"] for s in study["series"] if s["modality"]})
        assert study["lineage"]["source"] == "idc_index"
        assert all(s["lineage"]["index_row"] is not None for s in study["series"])
    (link,) = [lk for lk in detail["identity_links"] if lk["commons"] == "idc"]
    assert link["method"] == "barcode" and link["confidence"] == 1.0 and link["lineage"]["run_id"]
    assert detail["embeddings"] == [] and detail["proteomics"] == []

    assert_problem(client.get("/patients/TCGA-00-0000", headers=headers), 404)
    assert_problem(client.get("/patients/00000000-0000-0000-0000-000000000000", headers=headers), 404)
