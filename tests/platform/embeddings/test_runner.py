"""Embedding runs end to end in this process (the serial executor) on the real slides, the real CT series and
the sample graph's clinical records: rows, feature files, failures, skips on re-run, similarity."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from oncograph.access import Scope
from oncograph.embeddings.compute import SerialExecutor
from oncograph.embeddings.features import file_sha256
from oncograph.embeddings.jobs import EmbedRequest
from oncograph.embeddings.runner import embed
from oncograph.embeddings.similar import similar_objects
from oncograph.errors import ValidationError
from oncograph.settings import Settings

REPO = Path(__file__).resolve().parents[3]
WSI = REPO / "data" / "wsi"
CT = REPO / "data" / "dicom" / "ge_ct_colonography_3slice"
SCOPE = Scope.everything("test")


@pytest.fixture(scope="module")
def executor() -> SerialExecutor:
    return SerialExecutor(threads=2)


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def _rows(session: Session, run_id: int | None = None) -> list[dict]:
    where = "WHERE run_id = :r" if run_id is not None else ""
    return [
        dict(r._mapping)
        for r in session.execute(
            text(
                "SELECT object_kind, object_id, patient_id, attached_by, model, model_version, dim, tiles, "
                "input_sha256, features_uri, features_sha256, features_bytes, source_uri, source_text, details, "
                f"CAST(vector AS text) AS vector FROM embedding {where} ORDER BY object_kind, object_id"
            ),
            {"r": run_id},
        )
    ]


def test_slides_embed_fail_alone_and_skip_on_rerun(
    sample_factory: sessionmaker[Session], tmp_path: Path, executor: SerialExecutor
) -> None:
    folder = tmp_path / "slides"
    folder.mkdir()
    for slide in ("CMU-1-Small-Region.svs", "tcga-cr-7395-01a-01-ts1.svs"):
        shutil.copy(WSI / slide, folder / slide)
    whole = (WSI / "CMU-1-Small-Region.svs").read_bytes()
    (folder / "truncated.svs").write_bytes(whole[: len(whole) // 3])
    settings = _settings(tmp_path)
    # the TCGA fixture states no scale at all (no µm/px, TIFF resolution or objective): it fails alone
    no_scale = embed(
        sample_factory,
        EmbedRequest("slide", paths=(str(folder),), batch_size=32),
        settings,
        executor,
        scope=SCOPE,
    )
    assert (no_scale.embedded, no_scale.failed) == (1, 2)
    reasons = {Path(f["source"]).name: f["reason"] for f in no_scale.failures}
    assert (
        "states no scale" in reasons["tcga-cr-7395-01a-01-ts1.svs"]
        and "--mpp" in reasons["tcga-cr-7395-01a-01-ts1.svs"]
    )
    assert "truncated.svs" in reasons
    # with --mpp for slides that state none, it is embedded; the one already done is skipped
    request = EmbedRequest("slide", paths=(str(folder),), batch_size=32, mpp=0.25)
    first = embed(sample_factory, request, settings, executor, scope=SCOPE)
    assert (first.embedded, first.failed, first.skipped) == (1, 1, 1)
    assert first.unattached == 1  # neither slide is a file or a patient of the sample graph
    assert "truncated.svs" in first.failures[0]["source"] and first.failures[0]["reason"]
    with sample_factory() as session:
        rows = _rows(session)
        assert len(rows) == 2
        by_name = {Path(r["source_uri"]).name: r for r in rows}
        assert by_name["tcga-cr-7395-01a-01-ts1.svs"]["details"]["slide"]["mpp_source"] == "given"
        assert by_name["CMU-1-Small-Region.svs"]["details"]["slide"]["mpp_source"] == "openslide.mpp-x"
        for row in rows:
            assert row["attached_by"] == "unattached" and row["patient_id"] is None
            assert row["object_kind"] == "slide_file" and row["object_id"] == f"sha256:{row['input_sha256']}"
            assert row["dim"] == 1280 and row["model"] == "efficientnet-lite0"
            assert "sha256:" in row["model_version"]
            path = Path(row["features_uri"])
            assert path.is_file() and path.is_relative_to(settings.home_dir)
            assert (
                file_sha256(path) == row["features_sha256"] and path.stat().st_size == row["features_bytes"]
            )
            with h5py.File(path) as f:
                features, coords = f["features"][:], f["coords"][:]
            assert features.shape == (row["tiles"], 1280) and coords.shape == (row["tiles"], 2)
            pooled = np.array([float(x) for x in row["vector"].strip("[]").split(",")], dtype=np.float32)
            np.testing.assert_allclose(pooled, features.mean(axis=0), rtol=1e-5, atol=1e-6)
            assert row["details"]["patch_size_level0"] >= 1
        failures = session.execute(
            text("SELECT source_uri, reason FROM embedding_failure WHERE run_id = :r"), {"r": first.run_id}
        ).all()
        assert len(failures) == 1 and failures[0].source_uri.endswith("truncated.svs")
        status, counts = session.execute(
            text("SELECT status, counts FROM run WHERE id = :r"), {"r": first.run_id}
        ).one()
        assert status == "succeeded" and (counts["embedded"], counts["skipped"], counts["failed"]) == (
            1,
            1,
            1,
        )

    again = embed(sample_factory, request, settings, executor, scope=SCOPE)
    assert (again.embedded, again.skipped, again.failed) == (0, 2, 1)
    with sample_factory() as session:
        assert _rows(session, again.run_id) == []
        # the object itself is its own nearest neighbour
        kind, oid = rows[0]["object_kind"], rows[0]["object_id"]
        near = similar_objects(session, kind, oid, "efficientnet-lite0", scope=SCOPE, k=2)
        assert (near[0].object_kind, near[0].object_id) == (kind, oid) and near[0].distance < 1e-5
        assert near[1].object_id == rows[1]["object_id"] and near[1].distance > near[0].distance


def test_a_slide_of_a_graph_patient_by_barcode(
    sample_factory: sessionmaker[Session], tmp_path: Path, executor: SerialExecutor
) -> None:
    with sample_factory() as session:
        pid, barcode = session.execute(
            text(
                "SELECT id, submitter_id FROM patient WHERE submitter_id LIKE 'TCGA-__-____' ORDER BY id LIMIT 1"
            )
        ).one()
    # a real slide saved under a graph patient's barcode: this tests the name rule, not whose tissue it is
    named = tmp_path / f"{barcode}-01A-01-TS1.svs"
    shutil.copy(WSI / "CMU-1-Small-Region.svs", named)
    done = embed(
        sample_factory, EmbedRequest("slide", paths=(str(named),)), _settings(tmp_path), executor, scope=SCOPE
    )
    assert (done.embedded, done.unattached) == (1, 0)
    with sample_factory() as session:
        (row,) = _rows(session, done.run_id)
        assert row["patient_id"] == pid and row["attached_by"] == "barcode"
        projects = session.execute(
            text("SELECT projects FROM run WHERE id = :r"), {"r": done.run_id}
        ).scalar_one()
        assert projects  # the run names the project of the patient it touched


def test_scans_embed_the_real_ct_series(
    sample_factory: sessionmaker[Session], tmp_path: Path, executor: SerialExecutor
) -> None:
    folder = tmp_path / "dicom"
    shutil.copytree(CT, folder / "ct")
    (folder / "notes.dcm").write_text("not a DICOM file")
    done = embed(
        sample_factory, EmbedRequest("scan", paths=(str(folder),)), _settings(tmp_path), executor, scope=SCOPE
    )
    assert (done.embedded, done.failed) == (1, 1)
    assert "notes.dcm" in done.failures[0]["source"]
    with sample_factory() as session:
        (row,) = _rows(session, done.run_id)
        assert row["object_kind"] == "imaging_series" and row["tiles"] == 3 and row["dim"] == 1280
        assert (
            row["attached_by"] == "unattached"
        )  # the colonography series is not in the sample graph's IDC index
        assert row["details"]["scan"]


def test_clinical_text_of_every_patient(
    sample_factory: sessionmaker[Session], tmp_path: Path, executor: SerialExecutor
) -> None:
    settings = _settings(tmp_path)
    done = embed(sample_factory, EmbedRequest("text", batch_size=64), settings, executor, scope=SCOPE)
    with sample_factory() as session:
        patients = session.execute(
            text("SELECT count(*) FROM patient WHERE retired_release_id IS NULL")
        ).scalar_one()
        assert done.embedded == patients and done.failed == 0
        rows = _rows(session, done.run_id)
        assert all(r["dim"] == 384 and r["source_text"] and r["patient_id"] for r in rows)
        # the stored text is what was embedded, and its checksum is the input checksum
        import hashlib

        assert all(hashlib.sha256(r["source_text"].encode()).hexdigest() == r["input_sha256"] for r in rows)
    again = embed(sample_factory, EmbedRequest("text"), settings, executor, scope=SCOPE)
    assert (again.embedded, again.skipped) == (0, patients)


def test_requests_are_checked() -> None:
    with pytest.raises(ValidationError, match="nothing to embed"):
        EmbedRequest("slide")
    with pytest.raises(ValidationError, match="unknown modality"):
        EmbedRequest("genome", paths=("x",))
    with pytest.raises(ValidationError, match="rendered from the graph"):
        EmbedRequest("text", paths=("x",))


def test_a_gdc_file_is_fetched_from_data_verified_and_attached_by_its_id(
    sample_factory: sessionmaker[Session], tmp_path: Path, executor: SerialExecutor
) -> None:
    """Over real HTTP from the local GDC stand-in's ``/data``. The stand-in serves the bundled slide under its
    own id (not a GDC id), so inside this rolled-back test a real slide row of the sample graph is pointed at
    that id and the slide's md5 and size: the graph's md5 is what the download is verified against."""
    from oncograph.embeddings.inputs import hash_file
    from oncograph.sources.gdc.mirror import MirrorStore, serve_mirror
    from oncograph.sources.gdc.mirror.data_files import stand_in_file_id

    sha, md5, size = hash_file(WSI / "CMU-1-Small-Region.svs")
    fid = stand_in_file_id(sha)
    with sample_factory() as session:
        row_id, pid = session.execute(
            text(
                "SELECT f.id, min(fp.patient_id) FROM data_file f JOIN file_patient fp ON fp.file_id = f.id "
                "WHERE f.is_slide GROUP BY f.id HAVING count(*) = 1 ORDER BY f.id LIMIT 1"
            )
        ).one()
        session.execute(
            text(
                "UPDATE data_file SET file_id = CAST(:f AS uuid), md5sum = :m, file_size = :s, access = 'open' "
                "WHERE id = :id"
            ),
            {"f": fid, "m": md5, "s": size, "id": row_id},
        )
        session.commit()
        missing = session.execute(
            text("SELECT file_id::text FROM data_file WHERE is_slide AND id <> :id ORDER BY id LIMIT 1"),
            {"id": row_id},
        ).scalar_one()
    with serve_mirror(MirrorStore.from_documents(), data_files=WSI) as url:
        settings = Settings(home=tmp_path / "home", gdc_url=url, gdc_max_attempts=1)
        done = embed(
            sample_factory,
            EmbedRequest("slide", gdc_file_ids=(fid, missing)),
            settings,
            executor,
            scope=SCOPE,
        )
    assert (done.embedded, done.failed) == (1, 1), done.failures
    assert missing in done.failures[0]["source"]  # the stand-in has no bytes for it: reported, not fatal
    with sample_factory() as session:
        (row,) = _rows(session, done.run_id)
    assert (row["object_kind"], row["object_id"], row["attached_by"], row["patient_id"]) == (
        "data_file",
        fid,
        "file_id",
        pid,
    )
    assert row["source_uri"].endswith(f"/data/{fid}") and row["input_sha256"] == sha
    cached = list((tmp_path / "home" / "cache" / "gdc" / fid).iterdir())
    assert [p.name for p in cached] == ["CMU-1-Small-Region.svs"]
