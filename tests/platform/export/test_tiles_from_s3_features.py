"""Feature files on object storage (``ONCOGRAPH_FEATURES_ROOT=s3://bucket/prefix``) through a real local S3
endpoint (moto's server): the runner uploads them, ``export --tiles`` copies and verifies them from S3 (to a
folder and to S3), ``OncoDataset`` reads the bags of such an export, and a changed, missing or unreachable
object is a clear error.

Two real slides (``data/wsi``) saved under one graph patient's TCGA barcode are embedded twice by the real
runner: once with a local features root and once with the S3 root, into two private copies of the sample
graph. Feature files are written without timestamps, so the local run's bytes are the oracle for the S3
objects' bytes; expected values are read with boto3, hashlib and h5py, never through the code under test.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from oncograph.access import Scope
from oncograph.embeddings.compute import SerialExecutor
from oncograph.embeddings.feature_store import FeatureFile, FeatureStore, check_features_root
from oncograph.embeddings.features import read_features_h5
from oncograph.embeddings.jobs import EmbedRequest
from oncograph.embeddings.runner import embed
from oncograph.errors import ConfigurationError, ValidationError
from oncograph.export.job import ExportOptions, run_export
from oncograph.export.tiles import FeatureFileError
from oncograph.settings import Settings, get_settings

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
WSI = REPO / "data" / "wsi"
MODEL = "efficientnet-lite0"
# moto keeps one S3 state per process, shared by every server started in it (tests/flows/test_scale_out.py
# has one too): this module's buckets are its own
BUCKET = f"oncograph-features-{uuid.uuid4().hex[:8]}"
EXPORTS = f"oncograph-exports-{uuid.uuid4().hex[:8]}"
EVERYTHING = Scope.everything()
ExportDB = Any  # tests/platform/export/conftest.py


@dataclass
class Moto:
    url: str
    s3: Any

    def read(self, key: str, bucket: str = BUCKET) -> bytes:
        return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def keys(self, bucket: str, prefix: str = "") -> set[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "NO_PROXY": "127.0.0.1,localhost",
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            # the export reads the settings' endpoint for s3:// feature files when run_export names none
            mp.setenv("ONCOGRAPH_S3_ENDPOINT_URL", url)
            get_settings.cache_clear()
            s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            s3.create_bucket(Bucket=EXPORTS)
            yield Moto(url, s3)
        finally:
            get_settings.cache_clear()
            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


@dataclass
class Embedded:
    db: ExportDB
    cohort: Any
    case_id: str
    slides: list[dict[str, Any]]
    """The patient's slide embeddings (features_uri, features_sha256, features_bytes, tiles ...)."""
    local: dict[str, dict[str, Any]]
    """The same slides embedded with a local features root, by object id."""


def _embed_two_slides(
    db: ExportDB, settings: Settings, folder: Path
) -> tuple[str, str, list[dict[str, Any]]]:
    """(project, case UUID, embeddings) of two real slides embedded under one patient's barcode."""
    # the smallest project that has a patient with a TCGA barcode: its cohort exports fast
    project, pid, barcode, case_id = db.sql(
        "SELECT pr.project_id, p.id, p.submitter_id, p.case_id::text FROM patient p "
        "JOIN project pr ON pr.id = p.project_id WHERE p.submitter_id LIKE 'TCGA-__-____' "
        "AND p.retired_release_id IS NULL ORDER BY (SELECT count(*) FROM patient q "
        "WHERE q.project_id = p.project_id), p.case_id LIMIT 1"
    )[0]
    folder.mkdir(parents=True, exist_ok=True)
    # real slides saved under the patient's barcode: this tests the storage, not whose tissue they are
    shutil.copy(WSI / "CMU-1-Small-Region.svs", folder / f"{barcode}-01A-01-TS1.svs")
    shutil.copy(WSI / "tcga-cr-7395-01a-01-ts1.svs", folder / f"{barcode}-01A-02-TS2.svs")
    done = embed(
        db.factory,
        EmbedRequest("slide", paths=(str(folder),), mpp=0.25),
        settings,
        SerialExecutor(threads=2),
        scope=Scope.everything("t"),
    )
    assert (done.embedded, done.failed, done.unattached) == (2, 0, 0)
    rows = [
        dict(r._mapping)
        for r in db.sql(
            "SELECT object_kind, object_id, model_version, features_uri, features_sha256, features_bytes, tiles "
            "FROM embedding WHERE patient_id = :p AND modality = 'slide' ORDER BY object_kind, object_id",
            p=pid,
        )
    ]
    assert len(rows) == 2
    return str(project), str(case_id), rows


@pytest.fixture(scope="module")
def embedded(
    export_db: ExportDB,
    moto: Moto,
    tmp_path_factory: pytest.TempPathFactory,
    pg_server_url: str,
    sample_url: str,
    sample_engine: Any,
) -> Iterator[Embedded]:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker
    from support.db import clone_database, drop_database

    home = tmp_path_factory.mktemp("home")
    on_s3 = Settings(home=home, features_root=f"s3://{BUCKET}/features", s3_endpoint_url=moto.url)
    folder = tmp_path_factory.mktemp("s") / "slides"
    project, case_id, slides = _embed_two_slides(export_db, on_s3, folder)
    # the oracle: the same slide files (their path is in the feature file), a local features root, another
    # copy of the graph
    sample_engine.dispose()
    name = f"oncograph_s3feat{os.getpid()}_test"
    url = clone_database(pg_server_url, sample_url, name)
    engine = create_engine(url)
    local_db = type(export_db)(url, engine, sessionmaker(bind=engine, expire_on_commit=False))
    local_home = tmp_path_factory.mktemp("local-home")
    _, _, local = _embed_two_slides(local_db, Settings(home=local_home), folder)
    engine.dispose()
    drop_database(pg_server_url, name)
    assert not list(home.rglob("*.h5")), "an S3 root leaves no feature file on the local disk"
    owner = export_db.principal("s3-tiler", "curator")
    cohort = export_db.cohort(
        {"op": "in", "content": {"field": "project.project_id", "value": [project]}}, owner, EVERYTHING
    )
    assert case_id in export_db.members(cohort)
    yield Embedded(export_db, cohort, case_id, slides, {s["object_id"]: s for s in local})


def _key(uri: str) -> str:
    assert uri.startswith(f"s3://{BUCKET}/")
    return uri[len(f"s3://{BUCKET}/") :]


# -- writing -----------------------------------------------------------------------------------------------


def test_feature_files_are_uploaded_byte_for_byte_with_their_hash(embedded: Embedded, moto: Moto) -> None:
    assert moto.keys(BUCKET) == {_key(s["features_uri"]) for s in embedded.slides}
    for slide in embedded.slides:
        assert slide["features_uri"].startswith(f"s3://{BUCKET}/features/{MODEL}/")
        body = moto.read(_key(slide["features_uri"]))
        assert hashlib.sha256(body).hexdigest() == slide["features_sha256"]
        assert len(body) == slide["features_bytes"]
        local = embedded.local[slide["object_id"]]
        assert Path(local["features_uri"]).read_bytes() == body  # same input, same encoder: same bytes
        with h5py.File(io.BytesIO(body), "r") as f:
            assert f["coords"].shape == (slide["tiles"], 2)
            assert f["features"].shape[0] == slide["tiles"]


def test_a_feature_file_on_s3_reads_as_a_local_one(embedded: Embedded, moto: Moto) -> None:
    slide = embedded.slides[0]
    remote = FeatureFile(slide["features_uri"], moto.url)
    stat = remote.stat()
    assert stat.size == slide["features_bytes"] and stat.version
    with remote.open() as fh, h5py.File(fh, "r") as f:
        coords, features = np.asarray(f["coords"][:]), np.asarray(f["features"][:])
    c2, f2, _ = read_features_h5(Path(embedded.local[slide["object_id"]]["features_uri"]))
    np.testing.assert_array_equal(coords, c2)
    np.testing.assert_array_equal(features, f2)


# -- export --tiles from S3 ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(embedded: Embedded, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exports") / "from-s3"
    embedded.db.export(embedded.cohort, path, options=ExportOptions(tiles=True))
    return path


def test_export_copies_the_s3_feature_files_and_verifies_them(
    embedded: Embedded, exported: Path, moto: Moto
) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    copies = sorted((exported / "tiles" / MODEL).glob("*.h5"))
    assert len(copies) == len(embedded.slides)
    by_sha = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in copies}
    for slide in embedded.slides:
        copy = by_sha[slide["features_sha256"]]
        assert copy.read_bytes() == moto.read(_key(slide["features_uri"]))
        assert listed[f"tiles/{MODEL}/{copy.name}"]["sha256"] == slide["features_sha256"]
    (entry,) = manifest["tiles"]
    assert entry["rows"] == sum(s["tiles"] for s in embedded.slides)


def test_the_loader_reads_bags_of_an_export_made_from_s3_features(embedded: Embedded, exported: Path) -> None:
    pytest.importorskip("torch", reason="needs the ml extra: pip install 'oncograph[ml]'")
    from oncograph.ml import OncoDataset

    bags = OncoDataset(exported, split=None, tiles=MODEL)
    assert len(bags) == len(embedded.slides)
    by_id = {s["object_id"]: s for s in embedded.slides}
    for i in range(len(bags)):
        item = bags[i]
        local = embedded.local[item["object_id"]]
        _, features, _ = read_features_h5(Path(local["features_uri"]))
        np.testing.assert_array_equal(item["tiles"].numpy(), features)
        assert item["tiles"].shape[0] == by_id[item["object_id"]]["tiles"]


def test_export_of_s3_features_to_s3(embedded: Embedded, exported: Path, moto: Moto) -> None:
    result = embedded.db.export(
        embedded.cohort, f"s3://{EXPORTS}/t", options=ExportOptions(tiles=True), endpoint_url=moto.url
    )
    local = json.loads((exported / "manifest.json").read_text())
    for entry in (f for f in local["files"] if f["path"].startswith("tiles/")):
        body = moto.read(f"t/{entry['path']}", bucket=EXPORTS)
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    assert result.manifest["tiles"] == local["tiles"]


# -- objects that are not the recorded ones ---------------------------------------------------------------


@pytest.fixture()
def replaced_object(embedded: Embedded, moto: Moto) -> Iterator[tuple[str, bytes]]:
    """The second slide's S3 object, restored after the test."""
    key = _key(embedded.slides[1]["features_uri"])
    original = moto.read(key)
    yield key, original
    moto.s3.put_object(Bucket=BUCKET, Key=key, Body=original)


def _fails(embedded: Embedded, path: Path, match: str) -> FeatureFileError:
    export_id = embedded.db.queue(embedded.cohort, path, options=ExportOptions(tiles=True))
    with pytest.raises(FeatureFileError, match=match) as err:
        run_export(embedded.db.factory, export_id)
    assert not path.exists()
    assert embedded.db.export_row(export_id).status == "failed"
    return err.value


def test_a_changed_s3_object_fails_the_export(
    embedded: Embedded, moto: Moto, replaced_object: tuple[str, bytes], tmp_path: Path
) -> None:
    key, original = replaced_object
    buffer = io.BytesIO(original)
    with h5py.File(buffer, "r+") as f:  # one value changed in place: a valid file of the same size
        f["features"][0, 0] = f["features"][0, 0] + 1.0
    changed = buffer.getvalue()
    assert len(changed) == len(original) and changed != original
    moto.s3.put_object(Bucket=BUCKET, Key=key, Body=changed)
    error = _fails(embedded, tmp_path / "changed", "sha256")
    assert embedded.slides[1]["features_uri"] in str(error)


def test_a_missing_s3_object_fails_the_export_and_names_it(
    embedded: Embedded, moto: Moto, replaced_object: tuple[str, bytes], tmp_path: Path
) -> None:
    key, _ = replaced_object
    moto.s3.delete_object(Bucket=BUCKET, Key=key)
    error = _fails(embedded, tmp_path / "missing", "missing")
    assert embedded.slides[1]["features_uri"] in str(error) and error.hint


# -- configuration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "shown"),
    [("s3://", "bucket"), ("s3://bucket-only", "prefix"), ("gs://b/p", "neither"), ("", "neither")],
)
def test_a_bad_features_root_is_a_clear_error(root: str, shown: str) -> None:
    with pytest.raises(ValidationError, match=shown) as err:
        check_features_root(root)
    assert err.value.hint


def test_the_default_root_is_home_features(tmp_path: Path) -> None:
    store = FeatureStore.from_settings(Settings(home=tmp_path))
    assert not store.is_s3 and store.root == str(tmp_path.resolve() / "features")
    assert store.uri("m/v/x.h5") == str(tmp_path.resolve() / "features" / "m" / "v" / "x.h5")
    with pytest.raises(ValidationError):
        store.uri("../escape.h5")


def test_a_missing_bucket_or_unreachable_endpoint_is_a_clear_error(moto: Moto, tmp_path: Path) -> None:
    def write(path: Path) -> tuple[str, int]:
        path.write_bytes(b"x")
        return hashlib.sha256(b"x").hexdigest(), 1

    no_bucket = FeatureStore("s3://no-such-bucket-here/features", moto.url, tmp_path)
    with pytest.raises(ConfigurationError, match="no-such-bucket-here") as err:
        no_bucket.write("m/v/x.h5", write)
    assert "bucket" in str(err.value)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    down = FeatureFile(f"s3://{BUCKET}/features/x.h5", f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigurationError, match="ONCOGRAPH_S3_ENDPOINT_URL"):
        down.stat()
    assert not list(tmp_path.iterdir())  # the local staging folder is cleaned up
