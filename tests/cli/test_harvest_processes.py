"""Harvest processes killed mid-way and run concurrently: no duplicates, no corruption, same graph."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support.graph import snapshot

from oncograph.sources.gdc.mirror import FaultConfig, MirrorStore, build_mirror_directory, serve_mirror

PROJECTS = ["TCGA-CHOL", "TCGA-BRCA", "TCGA-PAAD"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, gdc_data: Path) -> MirrorStore:
    out = tmp_path_factory.mktemp("mirror")
    build_mirror_directory(gdc_data, out)
    return MirrorStore.from_directory(out)


def _harvest_cmd(url: str) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "oncograph_cli",
        "ingest",
        "gdc",
        "--gdc-url",
        url,
        "--page-size",
        "25",
        "--json",
    ]
    for p in PROJECTS:
        args += ["--project", p]
    return args


def _env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "ONCOGRAPH_DATABASE_URL": db_url, "ONCOGRAPH_HOME": str(tmp_path / "home")}


def _graph(db_url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        snap = snapshot(conn)
    engine.dispose()
    return snap


def _scalar(db_url: str, sql: str) -> object:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar_one()
    engine.dispose()
    return value


@pytest.fixture(scope="module")
def reference(
    store: MirrorStore, tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, template_url: str
):  # type: ignore[no-untyped-def]
    """The graph of one clean, uninterrupted harvest."""
    from support.db import clone_database

    url = clone_database(pg_server_url, template_url, f"oncograph_reference_{os.getpid()}_test")
    tmp = tmp_path_factory.mktemp("ref")
    with serve_mirror(store) as gdc:
        done = subprocess.run(
            _harvest_cmd(gdc), env=_env(url, tmp), capture_output=True, text=True, timeout=300
        )
    assert done.returncode == 0, done.stderr
    return _graph(url)


def test_killed_harvest_resumes_without_duplicates(
    store: MirrorStore, reference: dict[str, list[tuple[object, ...]]], fresh_db_url: str, tmp_path: Path
) -> None:
    with serve_mirror(store, faults=FaultConfig(latency_ms=40)) as gdc:
        proc = subprocess.Popen(
            _harvest_cmd(gdc),
            env=_env(fresh_db_url, tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if int(_scalar(fresh_db_url, "SELECT count(*) FROM patient")) >= 200:  # type: ignore[call-overload]
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    partial = int(_scalar(fresh_db_url, "SELECT count(*) FROM patient"))  # type: ignore[call-overload]
    assert 200 <= partial < len(reference["patient"])
    assert (
        _scalar(
            fresh_db_url, "SELECT status FROM run WHERE transform = 'harvest_gdc' ORDER BY id DESC LIMIT 1"
        )
        == "running"
    )

    with serve_mirror(store) as gdc:
        again = subprocess.run(
            _harvest_cmd(gdc), env=_env(fresh_db_url, tmp_path), capture_output=True, text=True, timeout=300
        )
    assert again.returncode == 0, again.stderr
    assert _graph(fresh_db_url) == reference
    statuses = _scalar(
        fresh_db_url, "SELECT string_agg(status, ',' ORDER BY id) FROM run WHERE transform = 'harvest_gdc'"
    )
    assert statuses == "abandoned,succeeded"
    dupes = _scalar(
        fresh_db_url,
        "SELECT count(*) FROM (SELECT entity_id FROM source_document "
        "GROUP BY source, entity_type, entity_id HAVING count(*) > 1) d",
    )
    assert dupes == 0


def test_two_concurrent_harvests_give_the_same_graph(
    store: MirrorStore, reference: dict[str, list[tuple[object, ...]]], fresh_db_url: str, tmp_path: Path
) -> None:
    with serve_mirror(store) as gdc:
        procs = [
            subprocess.Popen(
                _harvest_cmd(gdc),
                env=_env(fresh_db_url, tmp_path / str(i)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert _graph(fresh_db_url) == reference
    assert (
        _scalar(fresh_db_url, "SELECT string_agg(status, ',') FROM run WHERE transform = 'harvest_gdc'")
        == "succeeded,succeeded"
    )
