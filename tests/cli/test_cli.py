"""The ``oncograph`` command in real subprocesses against a real database and the local GDC server."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support.cli import run_cli

from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, gdc_data: Path) -> MirrorStore:
    out = tmp_path_factory.mktemp("mirror")
    build_mirror_directory(gdc_data, out)
    return MirrorStore.from_directory(out)


def _run(
    args: list[str], db_url: str, tmp_path: Path, timeout: int = 240
) -> subprocess.CompletedProcess[str]:
    return run_cli(args, db_url, tmp_path, timeout)


def test_ingest_lineage_status_round_trip(store: MirrorStore, fresh_db_url: str, tmp_path: Path) -> None:
    up = _run(["db", "upgrade", "--json"], fresh_db_url, tmp_path)
    assert up.returncode == 0, up.stderr
    from oncograph_cli.context import head_revision

    assert json.loads(up.stdout)["to"] == head_revision()
    chol = [d for d in store.documents("cases") if (d.get("project") or {}).get("project_id") == "TCGA-CHOL"]
    with serve_mirror(store) as url:
        out = _run(
            ["ingest", "gdc", "--project", "TCGA-CHOL", "--gdc-url", url, "--json"], fresh_db_url, tmp_path
        )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["entities"]["patient"] == {
        "inserted": len(chol),
        "updated": 0,
        "unchanged": 0,
        "quarantined": 0,
    }
    assert result["release"] == "Data Release 45.0 - December 04, 2025"

    case = chol[0]
    lin = _run(["lineage", case["case_id"], "--json"], fresh_db_url, tmp_path)
    assert lin.returncode == 0, lin.stderr
    info = json.loads(lin.stdout)
    patient = next(r for r in info["records"] if r["kind"] == "patient")
    assert patient["first_seen"] == result["release"]
    doc = next(d for d in info["documents"] if d["current"])
    assert doc["run_id"] == result["run_id"] and doc["transform"] == "harvest_gdc"

    st = _run(["status", "--json"], fresh_db_url, tmp_path)
    assert st.returncode == 0, st.stderr
    status = json.loads(st.stdout)
    assert status["counts"]["patient"] == len(chol)
    assert status["recent_runs"][0]["status"] == "succeeded"


def test_unknown_file_layout_fails_cleanly(fresh_db_url: str, tmp_path: Path) -> None:
    weird = tmp_path / "mystery.tsv"
    weird.write_text("alpha\tbeta\n1\t2\n")
    out = _run(["ingest", "gdc-portal", str(weird), "--json"], fresh_db_url, tmp_path)
    assert out.returncode == 1
    assert "mystery.tsv" in out.stderr and "Traceback" not in out.stderr


def test_lineage_of_unknown_id_is_a_clear_error(fresh_db_url: str, tmp_path: Path) -> None:
    out = _run(["lineage", "TCGA-NO-SUCH"], fresh_db_url, tmp_path)
    assert out.returncode == 1 and "no graph record" in out.stderr


@pytest.mark.slow
def test_prefect_flow_records_its_flow_run(store: MirrorStore, fresh_db_url: str, tmp_path: Path) -> None:
    with serve_mirror(store) as url:
        out = _run(
            ["ingest", "gdc", "--project", "TCGA-CHOL", "--gdc-url", url, "--flow", "--json"],
            fresh_db_url,
            tmp_path,
            timeout=400,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["prefect_flow_run_id"]
    engine = create_engine(fresh_db_url)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT CAST(prefect_flow_run_id AS text), status FROM run WHERE id = :i"),
            {"i": result["run_id"]},
        ).one()
    engine.dispose()
    assert row == (result["prefect_flow_run_id"], "succeeded")
    assert result["entities"]["patient"]["inserted"] > 0


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    out = _run(["status"], "postgresql+psycopg://nobody@127.0.0.1:9/nothing_test", tmp_path)
    assert out.returncode == 1
    assert "cannot connect to PostgreSQL" in out.stderr and "ONCOGRAPH_DATABASE_URL" in out.stderr
    assert "Traceback" not in out.stderr
