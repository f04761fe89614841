"""Dataset export to S3 through a local endpoint (moto's server, in this process), on a private copy of the
real sample graph: the round trip (manifest hashes against the bytes read back, Parquet read from S3), a file
large enough for a multipart upload, a kill while publishing, overwrite, and the errors of an access-denied
and a missing bucket.

Access is enforced by moto's IAM emulation (``enable_iam_authentication``): the exporting credentials belong to
an IAM user allowed everything on ``BUCKET``, only reads on ``READONLY`` and nothing on ``LOCKED``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import numpy as np
import pyarrow.parquet as pq
import pytest
import s3fs
from sqlalchemy import text

from oncograph import embeddings
from oncograph.access import Scope
from oncograph.errors import ConfigurationError, ConflictError
from oncograph.export.job import ExportOptions, ExportResult, run_export

BUCKET = "oncograph-exports"
READONLY = "oncograph-readonly"
LOCKED = "oncograph-locked"
EVERYTHING = Scope.everything()
BIG_MODEL = "big-enc/v2"
BIG_DIM = 1024
BIG_PER_PATIENT = 50
PART = 8 << 20  # storage.py's s3fs block size: bigger files are multipart uploads


def project_filter(*projects: str) -> dict[str, Any]:
    return {"op": "in", "content": {"field": "project.project_id", "value": list(projects)}}


@dataclass
class Moto:
    url: str
    s3: Any
    """boto3 S3 client with the administrator's (unchecked) credentials."""
    user_key: tuple[str, str] = ("", "")
    """Access key of the IAM user ``exporter``."""

    def objects(self, bucket: str = BUCKET, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, key: str, bucket: str = BUCKET) -> bytes:
        return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def fs(self) -> Any:
        return s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.url}, skip_instance_cache=True)


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
            for bucket in (BUCKET, READONLY, LOCKED):
                s3.create_bucket(Bucket=bucket)
            iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1")
            iam.create_user(UserName="exporter")
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["s3:ListBucket", "s3:GetObject", "s3:GetBucketLocation"],
                        "Resource": [f"arn:aws:s3:::{READONLY}", f"arn:aws:s3:::{READONLY}/*"],
                    },
                ],
            }
            iam.put_user_policy(UserName="exporter", PolicyName="exports", PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName="exporter")["AccessKey"]
            yield Moto(url, s3, (key["AccessKeyId"], key["SecretAccessKey"]))
        finally:
            server.stop()


@pytest.fixture(autouse=True)
def fresh_s3fs() -> Iterator[None]:
    """s3fs caches filesystems (and their listings) per process and thread: every test starts without them,
    as a new worker process would."""
    s3fs.S3FileSystem.clear_instance_cache()
    yield
    s3fs.S3FileSystem.clear_instance_cache()


@dataclass
class S3Graph:
    db: Any  # ExportDB (conftest)
    coad: Any
    chol: Any
    luad: Any
    staging_objects: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def graph(export_db: Any, moto: Moto) -> S3Graph:
    # 50 random 1024-d tile embeddings per TCGA-COAD patient: ~12 MB of float32 that barely compresses
    with export_db.engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.25)"))
        conn.execute(
            text(
                "INSERT INTO embedding (patient_id, object_kind, object_id, modality, model, model_version, dim, "
                "vector) SELECT p.id, 'tile', 'tile-' || p.case_id || '-' || j, 'slide', :model, '1', :dim, "
                "CAST((SELECT array_agg(random()::real) FROM generate_series(1, :dim) k WHERE j > 0) AS vector) "
                "FROM patient p JOIN project pr ON pr.id = p.project_id CROSS JOIN generate_series(1, :n) j "
                "WHERE pr.project_id = 'TCGA-COAD'"
            ),
            {"model": BIG_MODEL, "dim": BIG_DIM, "n": BIG_PER_PATIENT},
        )
    # a few small embeddings of TCGA-LUAD patients (an export with an embeddings folder, for overwrite)
    rng = np.random.default_rng(5)
    luad = export_db.sql(
        "SELECT p.id FROM patient p JOIN project pr ON pr.id = p.project_id "
        "WHERE pr.project_id = 'TCGA-LUAD' ORDER BY p.case_id LIMIT 5"
    )
    with export_db.factory() as s, s.begin():
        embeddings.store_embeddings(
            s,
            [
                embeddings.EmbeddingRow(
                    int(pid), "slide", f"s-{pid}", "slide", "small/v1", "1", rng.normal(size=4).tolist()
                )
                for (pid,) in luad
            ],
        )
    owner = export_db.principal("sam", "curator")
    return S3Graph(
        db=export_db,
        coad=export_db.cohort(project_filter("TCGA-COAD"), owner, EVERYTHING),
        chol=export_db.cohort(project_filter("TCGA-CHOL"), owner, EVERYTHING),
        luad=export_db.cohort(project_filter("TCGA-LUAD"), owner, EVERYTHING),
    )


@dataclass
class S3Export:
    prefix: str
    result: ExportResult
    manifest: dict[str, Any]
    staging: dict[str, tuple[int, str]]
    """Staging objects (key below the staging prefix -> size, ETag) just before publishing."""


@pytest.fixture(scope="module")
def coad(graph: S3Graph, moto: Moto) -> S3Export:
    """The TCGA-COAD cohort with its large embeddings, exported once to s3://BUCKET/exports/coad."""
    staging: dict[str, tuple[int, str]] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "croissant":  # every file is staged, nothing published yet
            for key in moto.objects(prefix="exports/coad.staging-"):
                head = moto.s3.head_object(Bucket=BUCKET, Key=key)
                staging[key.split("/", 2)[2]] = (int(head["ContentLength"]), str(head["ETag"]).strip('"'))
            assert not moto.objects(prefix="exports/coad/")

    result = graph.db.export(
        graph.coad, f"s3://{BUCKET}/exports/coad", endpoint_url=moto.url, progress=progress
    )
    manifest = json.loads(moto.read("exports/coad/manifest.json"))
    return S3Export("exports/coad", result, manifest, staging)


def test_s3_export_round_trip(graph: S3Graph, moto: Moto, coad: S3Export) -> None:
    m = coad.manifest
    assert m == coad.result.manifest
    listed = {f["path"]: f for f in m["files"]}
    assert {k.removeprefix("exports/coad/") for k in moto.objects(prefix="exports/coad/")} == {
        *listed,
        "manifest.json",
    }
    for path, entry in listed.items():
        data = moto.read(f"exports/coad/{path}")
        assert entry["size"] == len(data), path
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), path
    # no staging prefix is left anywhere, and the export record is complete
    assert not [k for k in moto.objects() if ".staging-" in k]
    row = graph.db.export_row(coad.result.export_id)
    assert (row.status, row.error, row.destination) == ("succeeded", None, f"s3://{BUCKET}/exports/coad")
    assert row.manifest == m
    assert coad.result.destination == f"s3://{BUCKET}/exports/coad"

    # Parquet reads straight from S3 (s3fs file objects and pyarrow datasets), and holds the members
    fs = moto.fs()
    members = graph.db.members(graph.coad)
    with fs.open(f"{BUCKET}/exports/coad/patients.parquet", "rb") as fh:
        patients = pq.read_table(fh)
    assert sorted(patients.column("case_id").to_pylist()) == sorted(members) and len(members) == 60
    assert patients.schema.metadata[b"oncograph.table"] == b"patients"
    assert all(patients.column("has_emb_big_enc_v2").to_pylist())
    for path in (p for p in listed if p.endswith(".parquet")):
        table = pq.read_table(f"{BUCKET}/exports/coad/{path}", filesystem=fs)
        assert table.num_rows == m["row_counts"][path], path
    assert set(m["row_counts"]) == {p for p, f in listed.items() if "rows" in f}
    croissant = json.loads(moto.read("exports/coad/croissant.json"))
    assert {f["contentUrl"] for f in croissant["distribution"]} == {
        p for p in listed if p.endswith(".parquet")
    }


def test_a_file_over_the_part_size_is_uploaded_in_parts(graph: S3Graph, moto: Moto, coad: S3Export) -> None:
    path = "embeddings/slide/big-enc_v2.parquet"
    entry = next(f for f in coad.manifest["files"] if f["path"] == path)
    assert entry["rows"] == 60 * BIG_PER_PATIENT
    assert entry["size"] > 10 << 20 > PART
    size, etag = coad.staging[path]
    assert size == entry["size"]
    parts = re.fullmatch(r"[0-9a-f]{32}-(\d+)", etag)
    assert parts and int(parts.group(1)) >= 2  # a multipart upload (ETag: md5 of the parts' md5s, -count)
    # every small file was a single upload
    assert all("-" not in e for p, (_, e) in coad.staging.items() if p != path)
    # the published copy holds exactly the bytes the manifest hashed, and the vectors of the graph
    data = moto.read(f"{coad.prefix}/{path}")
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    with moto.fs().open(f"{BUCKET}/{coad.prefix}/{path}", "rb") as fh:
        table = pq.read_table(fh, columns=["object_id", "vector"])
    sample = table.slice(0, 5).to_pylist() + table.slice(table.num_rows - 5).to_pylist()
    stored = dict(
        graph.db.sql(
            "SELECT object_id, vector::text FROM embedding WHERE object_id = ANY(:ids)",
            ids=[r["object_id"] for r in sample],
        )
    )
    for r in sample:
        expected = np.array(json.loads(stored[r["object_id"]]), dtype=np.float32)
        np.testing.assert_array_equal(np.asarray(r["vector"], dtype=np.float32), expected)


def _failed(graph: S3Graph, export_id: int) -> str:
    row = graph.db.export_row(export_id)
    assert row.status == "failed" and row.finished_at is not None
    return str(row.error)


def _exports_to(graph: S3Graph, destination: str) -> int:
    return int(graph.db.sql("SELECT count(*) FROM export WHERE destination = :d", d=destination)[0][0])


def test_access_denied_bucket_is_a_clear_error(
    graph: S3Graph, moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core.authorization import enable_iam_authentication

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto.user_key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto.user_key[1])
    # no access at all: refused when queued (no export record)
    destination = f"s3://{LOCKED}/exports/chol"
    with enable_iam_authentication(), pytest.raises(ConfigurationError) as err:
        graph.db.queue(graph.chol, destination, endpoint_url=moto.url)
    assert "access denied" in str(err.value) and destination in str(err.value)
    assert "credentials" in err.value.hint and "bucket policy" in err.value.hint
    assert _exports_to(graph, destination) == 0
    assert moto.objects(LOCKED) == []
    # read-only: the bucket can be listed, so the write fails when the worker writes the first file
    destination = f"s3://{READONLY}/exports/chol"
    with enable_iam_authentication():
        export_id = graph.db.queue(graph.chol, destination, endpoint_url=moto.url)
        with pytest.raises(ConfigurationError) as err:
            run_export(graph.db.factory, export_id, endpoint_url=moto.url)
    message = str(err.value)
    assert "access denied" in message and destination in message
    assert "credentials" in err.value.hint and "bucket policy" in err.value.hint
    assert "access denied" in _failed(graph, export_id)
    assert moto.objects(READONLY) == []  # nothing written, no staging left


def test_missing_bucket_is_a_clear_error(graph: S3Graph, moto: Moto) -> None:
    destination = "s3://no-such-bucket/exports/chol"
    with pytest.raises(ConfigurationError, match="does not exist") as err:
        graph.db.queue(graph.chol, destination, endpoint_url=moto.url)
    assert "no-such-bucket" in str(err.value)
    assert _exports_to(graph, destination) == 0


def test_overwrite_refuses_a_prefix_with_objects_the_manifest_does_not_list(
    graph: S3Graph, moto: Moto
) -> None:
    destination = f"s3://{BUCKET}/exports/fx"
    first = graph.db.export(graph.chol, destination, endpoint_url=moto.url)
    before = moto.read("exports/fx/manifest.json")
    moto.s3.put_object(Bucket=BUCKET, Key="exports/fx/my_notes.txt", Body=b"mine")
    moto.s3.put_object(Bucket=BUCKET, Key="exports/fx/models/model.pt", Body=b"weights")
    overwrite = ExportOptions(overwrite=True, seed=2)
    with pytest.raises(ConflictError) as err:
        graph.db.queue(graph.chol, destination, endpoint_url=moto.url, options=overwrite)
    assert "my_notes.txt" in str(err.value) and "models/model.pt" in str(err.value)
    assert "move them out" in str(err.value)
    assert _exports_to(graph, destination) == 1
    # objects that appear after the checks are found when publishing, under the publish lock, and kept
    moto.s3.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": "exports/fx/my_notes.txt"}, {"Key": "exports/fx/models/model.pt"}]},
    )
    export_id = graph.db.queue(graph.chol, destination, endpoint_url=moto.url, options=overwrite)

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "croissant":
            moto.s3.put_object(Bucket=BUCKET, Key="exports/fx/my_notes.txt", Body=b"mine")

    with pytest.raises(ConflictError, match=r"my_notes\.txt"):
        run_export(graph.db.factory, export_id, endpoint_url=moto.url, progress=progress)
    assert moto.read("exports/fx/my_notes.txt") == b"mine"
    assert moto.read("exports/fx/manifest.json") == before
    assert set(moto.objects(prefix="exports/fx/")) == {
        f"exports/fx/{f['path']}" for f in first.manifest["files"]
    } | {"exports/fx/manifest.json", "exports/fx/my_notes.txt"}
    assert not [k for k in moto.objects() if k.startswith("exports/fx.")]  # no staging, no marker


def test_kill_while_publishing_publishes_nothing_and_a_rerun_succeeds(
    graph: S3Graph, moto: Moto, kill_export: Callable[..., None]
) -> None:
    destination = f"s3://{BUCKET}/exports/killed"
    export_id = graph.db.queue(graph.chol, destination, endpoint_url=moto.url)
    kill_export(graph.db.url, export_id, "copy:3", moto.url)
    published = moto.objects(prefix="exports/killed/")
    assert len(published) == 3 and "exports/killed/manifest.json" not in published  # not an export
    assert moto.objects(prefix="exports/killed.staging-")
    assert graph.db.export_row(export_id).status == "running"

    result = graph.db.export(graph.chol, destination, endpoint_url=moto.url)
    assert not [k for k in moto.objects() if k.startswith("exports/killed.staging-")]
    listed = {f["path"]: f["sha256"] for f in result.manifest["files"]}
    assert set(moto.objects(prefix="exports/killed/")) == {
        f"exports/killed/{p}" for p in [*listed, "manifest.json"]
    }
    for path, sha in listed.items():
        assert hashlib.sha256(moto.read(f"exports/killed/{path}")).hexdigest() == sha
    assert json.loads(moto.read("exports/killed/manifest.json")) == result.manifest


def test_existing_s3_export_is_replaced_only_with_overwrite(graph: S3Graph, moto: Moto) -> None:
    destination = f"s3://{BUCKET}/exports/replaced"
    graph.db.export(graph.chol, destination, endpoint_url=moto.url)
    before = moto.read("exports/replaced/manifest.json")
    with pytest.raises(ConflictError, match="already holds an export"):
        graph.db.queue(graph.luad, destination, endpoint_url=moto.url)
    assert moto.read("exports/replaced/manifest.json") == before
    assert _exports_to(graph, destination) == 1

    result = graph.db.export(
        graph.luad, destination, endpoint_url=moto.url, options=ExportOptions(overwrite=True)
    )
    manifest = json.loads(moto.read("exports/replaced/manifest.json"))
    assert manifest == result.manifest and manifest["cohort"]["id"] == graph.luad.id
    for entry in manifest["files"]:
        assert hashlib.sha256(moto.read(f"exports/replaced/{entry['path']}")).hexdigest() == entry["sha256"]
    assert not [k for k in moto.objects() if k.startswith("exports/replaced.staging-")]


def test_overwrite_on_s3_leaves_no_file_of_the_previous_export(graph: S3Graph, moto: Moto) -> None:
    destination = f"s3://{BUCKET}/exports/shrunk"
    old = graph.db.export(graph.luad, destination, endpoint_url=moto.url)
    assert any(f["path"].startswith("embeddings/") for f in old.manifest["files"])
    new = graph.db.export(
        graph.chol, destination, endpoint_url=moto.url, options=ExportOptions(overwrite=True)
    )
    expected = {f"exports/shrunk/{f['path']}" for f in new.manifest["files"]} | {
        "exports/shrunk/manifest.json"
    }
    assert set(moto.objects(prefix="exports/shrunk/")) == expected


def test_stale_staging_of_another_process_is_removed_by_a_long_lived_worker(
    graph: S3Graph, moto: Moto
) -> None:
    graph.db.export(graph.chol, f"s3://{BUCKET}/jobs/first", endpoint_url=moto.url)
    # the same process then refuses an export (the destination is taken) after listing jobs/ ...
    with pytest.raises(ConflictError):
        graph.db.export(graph.chol, f"s3://{BUCKET}/jobs/first", endpoint_url=moto.url)
    # ... another worker dies while staging jobs/second (what test_kill_while_publishing shows a kill leaves) ...
    moto.s3.put_object(Bucket=BUCKET, Key="jobs/second.staging-0123456789ab/files.parquet", Body=b"partial")
    # ... and this worker exports to jobs/second
    graph.db.export(graph.chol, f"s3://{BUCKET}/jobs/second", endpoint_url=moto.url)
    assert moto.objects(prefix="jobs/second/")
    assert not moto.objects(prefix="jobs/second.staging-")
