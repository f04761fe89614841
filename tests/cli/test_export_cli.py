"""``oncograph export`` in real subprocesses on a private copy of the sample graph: in-process with a progress
bar, and as the Prefect flow ``export_cohort`` (its flow-run id lands on the export's run)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text
from support.cli import run_cli

pytestmark = pytest.mark.integration


def _run(
    args: list[str], db_url: str, tmp_path: Path, timeout: int = 400
) -> subprocess.CompletedProcess[str]:
    return run_cli(args, db_url, tmp_path, timeout)


def _chol_cohort(url: str, tmp_path: Path) -> dict[str, Any]:
    """Save the TCGA-CHOL cohort with ``oncograph cohort create``; its ``--json`` summary."""
    filters = tmp_path / "chol.json"
    filters.write_text(
        json.dumps({"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}})
    )
    made = _run(["cohort", "create", "--name", "chol", "--filters", str(filters), "--json"], url, tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    return cast(dict[str, Any], json.loads(made.stdout))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_export_cli_and_flow(clone_sample: Callable[[], str], tmp_path: Path) -> None:
    url = clone_sample()
    cohort = _chol_cohort(url, tmp_path)

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
    # the refused re-export and bad ratios never queue an export (no record)
    assert [r[0] for r in rows] == ["succeeded", "succeeded"]
    assert rows[-1] == ("succeeded", "succeeded", summary["prefect_flow_run_id"])


def test_bad_destinations_and_options_are_clear_errors_and_touch_nothing(
    clone_sample: Callable[[], str], tmp_path: Path
) -> None:
    url = clone_sample()
    cid = str(_chol_cohort(url, tmp_path)["id"])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = {
        "empty": (["--to", ""], "destination is empty"),
        "not an export": (["--to", str(mine), "--overwrite"], "not an oncograph export"),
        "a file": (["--to", str(a_file)], "is a file, not a folder"),
        "negative seed": (["--to", str(tmp_path / "s"), "--seed", "-1"], "seed -1 is out of range"),
        "other scheme": (["--to", "ftp://host/x"], "unsupported export destination"),
        "s3 without credentials": (["--to", "s3://nobucket/x/y"], "AWS"),
    }
    env_home = tmp_path / "aws"
    for name, (args, message) in cases.items():
        done = (
            run_cli(
                ["export", cid, *args],
                url,
                tmp_path,
                240,
            )
            if name != "s3 without credentials"
            else _no_aws(["export", cid, *args], url, tmp_path, env_home)
        )
        assert done.returncode == 1, (name, done.stderr[-2000:])
        assert message in done.stderr, (name, done.stderr[-2000:])
        assert "Traceback" not in done.stderr, name
        # refused before anything starts: no progress bar, no export record, no run
        assert "starting" not in done.stdout + done.stderr, (name, done.stderr[-2000:])
        assert _export_records(url) == (0, 0), name
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == [
        "notes.txt"
    ]
    assert a_file.read_text() == "x"
    assert not (tmp_path / "file:").exists()

    # file:// URLs are local folders; the worker command runs a queued export
    out = tmp_path / "via-url"
    done = _run(["export", cid, "--to", f"file://{out}"], url, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "manifest.json").is_file()
    idle = _run(["worker", "--once", "--json"], url, tmp_path)
    assert idle.returncode == 0, idle.stderr[-3000:]
    assert json.loads(idle.stdout)["exports_run"] == 0

    # --overwrite never deletes what is not the export's: files added to an export folder refuse it
    (out / "my_notes.txt").write_text("mine")
    (out / "models").mkdir()
    (out / "models" / "model.pt").write_bytes(b"weights")
    refused = _run(["export", cid, "--to", str(out), "--overwrite"], url, tmp_path)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert "my_notes.txt" in refused.stderr and "models/" in refused.stderr, refused.stderr[-2000:]
    assert "move them out" in refused.stderr and "Traceback" not in refused.stderr
    assert "starting" not in refused.stdout + refused.stderr
    assert (out / "my_notes.txt").read_text() == "mine"
    assert (out / "models" / "model.pt").read_bytes() == b"weights"
    assert _export_records(url) == (1, 1)


def _export_records(url: str) -> tuple[int, int]:
    """How many export records and export runs the database holds."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            exports = conn.execute(text("SELECT count(*) FROM export")).scalar_one()
            runs = conn.execute(
                text("SELECT count(*) FROM run WHERE transform = 'export_cohort'")
            ).scalar_one()
    finally:
        engine.dispose()
    return int(exports), int(runs)


def _no_aws(args: list[str], url: str, tmp_path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    import os

    return run_cli(
        args,
        url,
        tmp_path,
        environ={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        extra_env={
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "ONCOGRAPH_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        },
    )
