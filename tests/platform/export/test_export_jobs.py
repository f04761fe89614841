"""Exports as jobs: a worker in another process is SIGKILLed mid-export and the next worker finishes it
exactly once; one database snapshot per export; destinations that are not exports are never touched; the
options' limits hold at every door."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from oncograph.access import Scope
from oncograph.errors import ConflictError, ValidationError
from oncograph.export.job import run_export
from oncograph.export.options import SEED_MAX, ExportOptions
from oncograph.export.storage import Destination
from oncograph.export.worker import work

EVERYTHING = Scope.everything()
ExportDB = Any
CHOL = {"op": "in", "content": {"field": "project.project_id", "value": ["TCGA-CHOL"]}}


@pytest.fixture(scope="module")
def chol(export_db: ExportDB) -> Any:
    owner = export_db.principal("jobs-owner", "curator")
    return export_db.cohort(CHOL, owner, EVERYTHING)


_WORKER = """
import os, signal, sys
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from oncograph.export.worker import work

url, kill_at = sys.argv[1], sys.argv[2]
factory = sessionmaker(bind=create_engine(url), expire_on_commit=False)

def progress(stage, done, total):
    if stage == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

work(factory, once=True, lease_seconds=float(sys.argv[3]), progress=progress, poll_seconds=0.1)
sys.exit(3)
"""


def _worker(url: str, kill_at: str, lease: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _WORKER, url, kill_at, str(lease)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_a_killed_worker_export_is_retried_by_the_next_worker_and_published_once(
    export_db: ExportDB, chol: Any, tmp_path: Path
) -> None:
    path = tmp_path / "killed-worker"
    export_id = export_db.queue(chol, path)
    killed = _worker(export_db.url, "patients", 2.0)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    row = export_db.export_row(export_id)
    assert (row.status, row.attempts) == ("running", 1)  # until its lease expires
    first_run = row.run_id
    assert not path.exists()

    time.sleep(2.5)  # the dead worker's lease expires
    second = _worker(export_db.url, "never", 2.0)
    assert second.returncode == 3, second.stderr[-3000:]
    row = export_db.export_row(export_id)
    assert (row.status, row.attempts, row.error) == ("succeeded", 2, None)
    assert row.run_id != first_run
    runs = export_db.sql(
        "SELECT id, status FROM run WHERE transform = 'export_cohort' "
        "AND (parameters->>'export_id')::bigint = :e ORDER BY id",
        e=export_id,
    )
    assert [(r[0], r[1]) for r in runs] == [(first_run, "abandoned"), (row.run_id, "succeeded")]
    manifests = list(path.parent.rglob("manifest.json"))
    assert manifests == [path / "manifest.json"]  # one published manifest, no leftovers
    assert sorted(p.name for p in path.parent.iterdir()) == ["killed-worker"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["export"] == {"id": export_id} and manifest == row.manifest
    assert pq.read_metadata(path / "patients.parquet").num_rows == 51
    assert (
        export_db.sql("SELECT count(*) FROM export WHERE status = 'succeeded' AND id = :e", e=export_id)[0][0]
        == 1
    )


def test_a_publish_that_died_before_it_was_recorded_is_adopted_not_repeated(
    export_db: ExportDB, chol: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oncograph.export import publish

    path = tmp_path / "adopted"
    export_id = export_db.queue(chol, path)
    real = publish._supersede_and_succeed

    def die(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the process dies between the rename and the commit

    monkeypatch.setattr(publish, "_supersede_and_succeed", die)
    with pytest.raises(KeyboardInterrupt):
        run_export(export_db.factory, export_id)
    monkeypatch.setattr(publish, "_supersede_and_succeed", real)
    published = (path / "manifest.json").read_bytes()
    assert export_db.export_row(export_id).status == "queued"  # interrupted: back in the queue
    mtime = (path / "patients.parquet").stat().st_mtime_ns
    assert work(export_db.factory, once=True) == 1
    row = export_db.export_row(export_id)
    assert row.status == "succeeded" and row.manifest == json.loads(published)
    assert (path / "patients.parquet").stat().st_mtime_ns == mtime  # not written again


def test_a_live_lease_keeps_other_workers_off(export_db: ExportDB, chol: Any, tmp_path: Path) -> None:
    export_id = export_db.queue(chol, tmp_path / "leased")
    export_db.execute(
        "UPDATE export SET status = 'running', lease_owner = 'elsewhere', "
        "lease_expires_at = now() + interval '1 hour' WHERE id = :e",
        e=export_id,
    )
    with pytest.raises(ConflictError, match="running on worker elsewhere"):
        run_export(export_db.factory, export_id)
    assert work(export_db.factory, once=True) == 0
    export_db.execute("UPDATE export SET status = 'failed', lease_owner = NULL WHERE id = :e", e=export_id)


def test_every_read_of_an_export_sees_one_snapshot(export_db: ExportDB, chol: Any, tmp_path: Path) -> None:
    members = export_db.members(chol)
    case_id, pid = sorted(members.items())[0]
    before = export_db.sql("SELECT submitter_id FROM patient WHERE id = :p", p=pid)[0][0]
    diagnoses = export_db.sql(
        "SELECT count(*) FROM diagnosis WHERE patient_id = :p AND retired_release_id IS NULL", p=pid
    )[0][0]
    assert diagnoses > 0
    release = export_db.sql("SELECT max(id) FROM source_release")[0][0]
    changed: list[str] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "strata" and not changed:  # committed by another connection after stage 1
            export_db.execute("UPDATE patient SET submitter_id = 'CHANGED' WHERE id = :p", p=pid)
            export_db.execute(
                "UPDATE diagnosis SET retired_release_id = :r WHERE patient_id = :p", r=release, p=pid
            )
            changed.append(stage)

    try:
        result = export_db.export(chol, tmp_path / "snapshot", progress=progress)
    finally:
        export_db.execute("UPDATE patient SET submitter_id = :s WHERE id = :p", s=before, p=pid)
        export_db.execute(
            "UPDATE diagnosis SET retired_release_id = NULL WHERE patient_id = :p AND retired_release_id = :r",
            r=release,
            p=pid,
        )
    assert changed
    out = Path(result.destination)
    patients = {r["case_id"]: r["submitter_id"] for r in pq.read_table(out / "patients.parquet").to_pylist()}
    assert patients[case_id] == before
    dx = pq.read_table(out / "diagnoses.parquet").column("case_id").to_pylist()
    assert dx.count(case_id) == diagnoses


# -- destinations ---------------------------------------------------------------------------------------


def _exports_to(db: ExportDB, destination: Path | str) -> int:
    return int(db.sql("SELECT count(*) FROM export WHERE destination = :d", d=str(destination))[0][0])


def test_overwrite_never_deletes_a_folder_that_is_not_an_export(
    export_db: ExportDB, chol: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "my-thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    # refused when queued: no export record, nothing touched
    with pytest.raises(ConflictError, match="not empty and is not an oncograph export") as err:
        export_db.queue(chol, folder, options=ExportOptions(overwrite=True))
    assert "already holds an export" not in str(err.value)
    assert _exports_to(export_db, folder) == 0
    assert (folder / "chapter1.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-thesis"]
    # a manifest.json that is not ours does not make it an export either
    (folder / "manifest.json").write_text(json.dumps({"name": "someone else's"}))
    with pytest.raises(ConflictError, match="not an oncograph export"):
        export_db.queue(chol, folder, options=ExportOptions(overwrite=True))
    assert (folder / "chapter1.tex").read_text() == "precious"
    # and the worker checks again when it runs: files that appeared after queueing are never deleted
    later = tmp_path / "later"
    export_id = export_db.queue(chol, later, options=ExportOptions(overwrite=True))
    later.mkdir()
    (later / "chapter2.tex").write_text("precious too")
    with pytest.raises(ConflictError, match="not empty and is not an oncograph export"):
        run_export(export_db.factory, export_id)
    assert export_db.export_row(export_id).status == "failed"
    assert sorted(p.name for p in later.iterdir()) == ["chapter2.tex"]


def _foreign(path: Path) -> None:
    """What a user adds to an export folder: a note at the top and a model in a new folder."""
    (path / "my_notes.txt").write_text("mine")
    (path / "models").mkdir()
    (path / "models" / "model.pt").write_bytes(b"weights")


def test_overwrite_refuses_an_export_folder_that_holds_files_the_manifest_does_not_list(
    export_db: ExportDB, chol: Any, tmp_path: Path
) -> None:
    path = tmp_path / "fx"
    first = export_db.export(chol, path)
    published = (path / "manifest.json").read_bytes()
    _foreign(path)
    with pytest.raises(ConflictError) as err:
        export_db.queue(chol, path, options=ExportOptions(overwrite=True, seed=2))
    message = f"{err.value} {err.value.hint}"
    assert "my_notes.txt" in message and "models/" in message, message
    assert "move them out" in message and "elsewhere" in message, message
    assert _exports_to(export_db, path) == 1  # only the first export's record
    assert (path / "my_notes.txt").read_text() == "mine"
    assert (path / "models" / "model.pt").read_bytes() == b"weights"
    assert (path / "manifest.json").read_bytes() == published
    assert export_db.export_row(first.export_id).status == "succeeded"
    # an extra folder, even empty, or a hidden file is not the export's either (nothing is ignored)
    (path / "my_notes.txt").unlink()
    (path / "models" / "model.pt").unlink()
    with pytest.raises(ConflictError, match="models/"):
        export_db.queue(chol, path, options=ExportOptions(overwrite=True))
    (path / "models").rmdir()
    (path / ".DS_Store").write_bytes(b"")
    with pytest.raises(ConflictError, match=r"\.DS_Store"):
        export_db.queue(chol, path, options=ExportOptions(overwrite=True))
    (path / ".DS_Store").unlink()
    # only the export's own files: replaced
    second = export_db.export(chol, path, options=ExportOptions(overwrite=True, seed=2))
    assert json.loads((path / "manifest.json").read_text())["export"] == {"id": second.export_id}


def test_files_added_to_an_export_while_it_is_replaced_are_kept(
    export_db: ExportDB, chol: Any, tmp_path: Path
) -> None:
    path = tmp_path / "fx"
    export_db.export(chol, path)
    published = (path / "manifest.json").read_bytes()
    export_id = export_db.queue(chol, path, options=ExportOptions(overwrite=True, seed=3))

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "croissant" and not (path / "my_notes.txt").exists():
            _foreign(path)  # after the checks of the queue and of the start of the run

    with pytest.raises(ConflictError, match=r"my_notes\.txt"):
        run_export(export_db.factory, export_id, progress=progress)
    assert (path / "my_notes.txt").read_text() == "mine"
    assert (path / "models" / "model.pt").read_bytes() == b"weights"
    assert (path / "manifest.json").read_bytes() == published
    assert export_db.export_row(export_id).status == "failed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fx"]  # no staging or aside folder left


def test_an_empty_folder_is_written(export_db: ExportDB, chol: Any, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    result = export_db.export(chol, folder)
    assert Path(result.destination) == folder and (folder / "manifest.json").is_file()


def test_an_overwritten_export_record_is_superseded(export_db: ExportDB, chol: Any, tmp_path: Path) -> None:
    path = tmp_path / "twice"
    first = export_db.export(chol, path)
    second = export_db.export(chol, path, options=ExportOptions(overwrite=True, seed=4))
    old = export_db.export_row(first.export_id)
    assert (old.status, old.superseded_by_id) == ("superseded", second.export_id)
    assert export_db.export_row(second.export_id).status == "succeeded"


def test_a_taken_destination_is_refused_when_queued(export_db: ExportDB, chol: Any, tmp_path: Path) -> None:
    path = tmp_path / "taken"
    export_db.export(chol, path)
    with pytest.raises(ConflictError, match="already holds an export"):
        export_db.queue(chol, path)
    assert _exports_to(export_db, path) == 1
    # the record alone (the folder was removed by hand) still holds the name
    import shutil

    shutil.rmtree(path)
    with pytest.raises(ConflictError, match="already holds an export"):
        export_db.queue(chol, path)
    assert export_db.queue(chol, path, options=ExportOptions(overwrite=True)) > 0


def test_a_file_destination_is_refused_clearly(export_db: ExportDB, chol: Any, tmp_path: Path) -> None:
    target = tmp_path / "a-file.txt"
    target.write_text("x")
    with pytest.raises(ValidationError, match="is a file, not a folder"):
        export_db.queue(chol, target)
    assert _exports_to(export_db, target) == 0
    assert target.read_text() == "x"
    # a parent that is a file
    with pytest.raises(ValidationError, match="a parent of it is a file"):
        export_db.queue(chol, target / "sub" / "out")
    assert not list(tmp_path.glob("a-file.txt*/**"))
    # the worker checks again: a file that appeared after queueing
    later = tmp_path / "later.txt"
    export_id = export_db.queue(chol, later)
    later.write_text("y")
    with pytest.raises(ValidationError, match="is a file, not a folder"):
        run_export(export_db.factory, export_id)
    assert later.read_text() == "y" and export_db.export_row(export_id).status == "failed"


def test_every_export_run_records_the_principal_that_owns_the_export(
    export_db: ExportDB, chol: Any, tmp_path: Path
) -> None:
    from oncograph.access import ensure_local_principal

    with export_db.factory() as s, s.begin():
        local = ensure_local_principal(s)
    for who in (local, chol.owner):
        result = export_db.export(chol, tmp_path / f"by-{who.name}", principal=who)
        run_principal = export_db.sql(
            "SELECT r.principal_id FROM export e JOIN run r ON r.id = e.run_id WHERE e.id = :e",
            e=result.export_id,
        )[0][0]
        assert run_principal == who.id, who.name


@pytest.mark.parametrize("bad", ["", "   ", "ftp://host/x", "file://otherhost/x", "file:///", "/"])
def test_bad_destinations_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        Destination(bad)


def test_file_urls_are_local_folders(tmp_path: Path) -> None:
    assert Destination(f"file://{tmp_path}/out").url == str(tmp_path / "out")
    assert Destination(f"file://localhost{tmp_path}/my%20out").url == str(tmp_path / "my out")
    assert not Destination(f"file://{tmp_path}/out").is_s3


def test_s3_without_credentials_is_a_clear_error(
    export_db: ExportDB, chol: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    from oncograph.errors import ConfigurationError

    destination = "s3://some-bucket/exports/x"
    with pytest.raises(ConfigurationError, match="AWS credentials"):
        export_db.queue(chol, destination, endpoint_url="http://127.0.0.1:9")
    assert _exports_to(export_db, destination) == 0


@pytest.mark.parametrize("seed", [-1, SEED_MAX + 1, True, 1.5])
def test_seed_limits_are_the_same_at_every_door(seed: Any) -> None:
    with pytest.raises(ValidationError, match="seed"):
        ExportOptions(seed=seed)
    with pytest.raises(ValidationError, match="seed"):
        ExportOptions.from_json({"seed": seed})
    assert ExportOptions(seed=SEED_MAX).seed == SEED_MAX


def test_create_export_requires_a_scope(export_db: ExportDB, chol: Any, tmp_path: Path) -> None:
    import inspect

    from oncograph.export.job import create_export

    param = inspect.signature(create_export).parameters["scope"]
    assert param.default is inspect.Parameter.empty
    assert "None" not in str(param.annotation)
