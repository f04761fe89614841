"""Scheduled ingestion: deployments as code, served against a real Prefect server, run end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_schedule_list_shows_crons_and_next_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "oncograph_cli", "schedule", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    gdc = next(r for r in rows if r["flow"] == "harvest_gdc")
    assert gdc["cron"] == "0 3 * * *" and len(gdc["next_runs"]) == 3
    assert gdc["parameters"]["projects"]


@pytest.fixture()
def prefect_server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("prefect server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@pytest.mark.slow
def test_served_deployment_runs_a_harvest(
    prefect_server: str, fresh_db_url: str, tmp_path: Path, gdc_data: Path
) -> None:
    mirror = tmp_path / "mirror"
    build_mirror_directory(gdc_data, mirror)
    store = MirrorStore.from_directory(mirror)
    with serve_mirror(store) as gdc:
        env = {
            **os.environ,
            "PREFECT_API_URL": prefect_server,
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "ONCOGRAPH_DATABASE_URL": fresh_db_url,
            "ONCOGRAPH_GDC_URL": gdc,
            "ONCOGRAPH_HOME": str(tmp_path / "home"),
        }
        served = subprocess.Popen(
            [sys.executable, "-m", "oncograph_cli", "schedule", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deployment = None
            deadline = time.monotonic() + 120
            while deployment is None and time.monotonic() < deadline:
                found = httpx.post(f"{prefect_server}/deployments/filter", json={}, timeout=10).json()
                deployment = next((d for d in found if d["name"] == "harvest-gdc-nightly"), None)
                time.sleep(1)
            assert deployment is not None, "the deployment was not registered"
            crons = [s["schedule"]["cron"] for s in deployment["schedules"]]
            assert crons == ["0 3 * * *"]
            run = httpx.post(
                f"{prefect_server}/deployments/{deployment['id']}/create_flow_run",
                json={"parameters": {"projects": ["TCGA-CHOL"]}},
                timeout=10,
            ).json()
            state = None
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                state = httpx.get(f"{prefect_server}/flow_runs/{run['id']}", timeout=10).json()["state"][
                    "type"
                ]
                if state in ("COMPLETED", "FAILED", "CRASHED"):
                    break
                time.sleep(1)
            assert state == "COMPLETED", state
        finally:
            served.terminate()
            served.wait(timeout=60)
    engine = create_engine(fresh_db_url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT CAST(prefect_flow_run_id AS text), status, parameters FROM run WHERE transform = 'harvest_gdc'"
            )
        ).one()
        patients = conn.execute(text("SELECT count(*) FROM patient")).scalar_one()
    engine.dispose()
    assert row[0] == run["id"] and row[1] == "succeeded" and row[2]["projects"] == ["TCGA-CHOL"]
    chol = [d for d in store.documents("cases") if (d.get("project") or {}).get("project_id") == "TCGA-CHOL"]
    assert patients == len(chol)
