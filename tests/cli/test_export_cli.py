"""``oncograph export`` in real subprocesses on a private copy of the sample graph: in-process with a progress
bar, and as the Prefect flow ``export_cohort`` (its flow-run id lands on the export's run)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text
from support.cli import run_cli

pytestmark = pytest.mark.integration


def _run(
    args: list[str], db_url: str, tmp_path: Path, timeout: int = 400
) -> subprocess.CompletedProcess[str]:
    return run_cli(args, db_url, tmp_path, timeout)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_export_cli_and_flow(clone_sample: Callable[[], str], tmp_path: Path) -> None:
    url = clone_sample()
    filters = tmp_path / "chol.json"
    filters.write_text(
        json.dumps({"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}})
    )
    made = _run(["cohort", "create", "--name", "chol", "--filters", str(filters), "--json"], url, tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    cohort = json.loads(made.stdout)

    out = tmp_path / "chol-export"
    done = _run(["export", str(cohort["id"]), "--to", str(out), "--seed", "3"], url, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "export published" in done.stderr and "exported cohort" in done.stderr  # the bar, then the summary
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cohort"]["member_hash"] == cohort["member_hash"]
    assert manifest["row_counts"]["patients.parquet"] == cohort["size"] == 51
    assert pq.read_table(out / "patients.parquet").num_rows == 51
    for f in manifest["files"]:
        assert _sha(out / f["path"]) == f["sha256"], f["path"]

    # exporting again to the same place needs --overwrite; a clear error otherwise
    again = _run(["export", str(cohort["id"]), "--to", str(out)], url, tmp_path)
    assert (
        again.returncode == 1
        and "already holds an export" in again.stderr
        and "Traceback" not in again.stderr
    )
    bad = _run(["export", str(cohort["id"]), "--to", str(out), "--ratios", "0.5,0.5,0.5"], url, tmp_path)
    assert bad.returncode == 1 and "adding up to 1" in bad.stderr

    # the Prefect flow: same cohort version and options -> byte-identical Parquet
    flow_out = tmp_path / "chol-flow"
    flowed = _run(
        ["export", str(cohort["id"]), "--to", str(flow_out), "--seed", "3", "--flow", "--json"], url, tmp_path
    )
    assert flowed.returncode == 0, flowed.stderr[-3000:]
    summary = json.loads(flowed.stdout)
    assert summary["prefect_flow_run_id"]
    for name in ("patients.parquet", "files.parquet", "splits.parquet", "diagnoses.parquet"):
        assert _sha(out / name) == _sha(flow_out / name), name
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.status, r.status, CAST(r.prefect_flow_run_id AS text) FROM export e "
                "JOIN run r ON r.id = e.run_id ORDER BY e.id"
            )
        ).all()
    engine.dispose()
    # the refused re-export is recorded as a failed export (nothing published); bad ratios never start one
    assert [r[0] for r in rows] == ["succeeded", "failed", "succeeded"]
    assert rows[-1] == ("succeeded", "succeeded", summary["prefect_flow_run_id"])
