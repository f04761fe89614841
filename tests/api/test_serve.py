"""``oncograph serve`` in a real subprocess: uvicorn serves the app on the configured database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_health_and_problems(fresh_db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ONCOGRAPH_DATABASE_URL": fresh_db_url, "ONCOGRAPH_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "oncograph_cli", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0].decode()
                assert time.monotonic() < deadline, "the API did not start within 60 s"
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["database"] == "ok"
        unauthenticated = httpx.get(f"{base}/cohorts", timeout=5)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"].startswith("application/problem+json")
        assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_refuses_an_unmigrated_database(tmp_path: Path, pg_server_url: str) -> None:
    name = f"oncograph_api_empty{os.getpid()}_test"
    admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "ONCOGRAPH_DATABASE_URL": url, "ONCOGRAPH_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "oncograph_cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    message = " ".join(done.stderr.split())  # rich wraps long lines
    assert "oncograph db upgrade" in message and "Traceback" not in message
