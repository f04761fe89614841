"""UI test fixtures: a real API (``oncograph serve`` in a subprocess, with its export worker) over a private
copy of the sample graph, a curator's key, and real clinical-text embeddings (MiniLM, in this process) for one
project's patients, so the patient page has similar patients to show."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from api.harness import ApiDb
from sqlalchemy import Engine
from support.db import clone_database

from oncograph.access import Scope
from oncograph.embeddings.compute import SerialExecutor
from oncograph.embeddings.jobs import EmbedRequest
from oncograph.embeddings.runner import embed
from oncograph.settings import Settings

APP = Path(__file__).resolve().parents[2] / "ui" / "oncograph_ui" / "app.py"
CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}


@dataclass(frozen=True)
class UiStack:
    db: ApiDb
    api_url: str
    key: str
    headers: dict[str, str]
    home: Path
    embedded_case: str
    """A TCGA-CHOL barcode with a clinical-text embedding (as do the other CHOL patients)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            out = process.stdout.read().decode() if process.stdout else ""
            raise AssertionError(f"{what} exited: {out[-2000:]}")
        assert time.monotonic() < deadline, f"{what} did not start within {timeout} s"
        time.sleep(0.3)


@pytest.fixture(scope="session")
def ui_stack(
    pg_server_url: str, sample_url: str, sample_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiStack]:
    sample_engine.dispose()
    url = clone_database(pg_server_url, sample_url, f"oncograph_ui{os.getpid()}_test")
    db = ApiDb(url)
    headers = db.user("ui-curator", "curator")
    home = tmp_path_factory.mktemp("ui-home")
    settings = Settings(database_url=url, home=home)
    client = db.client()
    made = client.post("/cohorts", headers=headers, json={"name": "chol for embeddings", "filters": CHOL})
    assert made.status_code == 201, made.text
    assert client.post(f"/cohorts/{made.json()['id']}/share", headers=headers).status_code == 200
    done = embed(
        db.sessions, EmbedRequest("text", cohort_id=made.json()["id"], batch_size=64), settings,
        SerialExecutor(threads=2), scope=Scope.everything("test"),
    )  # fmt: skip
    assert done.embedded == 51 and done.failed == 0, done.to_json()
    case = db.scalar(
        "SELECT p.submitter_id FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-CHOL' ORDER BY p.submitter_id LIMIT 1"
    )
    port = free_port()
    env = {
        **os.environ, "ONCOGRAPH_DATABASE_URL": url, "ONCOGRAPH_HOME": str(home),
        "ONCOGRAPH_EXPORT_ROOT": str(home / "exports"),
    }  # fmt: skip
    command = [sys.executable, "-m", "oncograph_cli", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    api_url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{api_url}/health", process, "oncograph serve")
        yield UiStack(db, api_url, headers["X-API-Key"], headers, home, case)
    finally:
        process.terminate()
        process.wait(timeout=20)
        db.engine.dispose()


@pytest.fixture()
def api_env(ui_stack: UiStack, monkeypatch: pytest.MonkeyPatch) -> UiStack:
    """The UI process's environment for AppTest: where the API is, and no key from the environment."""
    monkeypatch.setenv("ONCOGRAPH_API_URL", ui_stack.api_url)
    monkeypatch.delenv("ONCOGRAPH_API_KEY", raising=False)
    return ui_stack
