"""Where embedding inputs come from, on real bytes: the bundled slides (``data/wsi``, checked against its
SHA256SUMS) fetched over real HTTP from the GDC stand-in's ``/data``, from a real local S3 endpoint (moto's
server, in this process), and from local paths and folders.

The GDC downloads are checked for what a user relies on: the md5 is verified and a verified file is reused
without a request; a body cut short (the stand-in's fault injector) or a run killed mid-stream resumes with
``Range`` and still ends with the right sha256; what fails leaves nothing behind in the cache.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import pytest
from support.servers import read_url

from oncograph.embeddings.inputs import (
    LocalInput,
    file_name_from,
    gdc_input,
    hash_file,
    local_input,
    resolve_inputs,
    s3_cache_path,
    s3_input,
)
from oncograph.errors import NotFoundError, SourceError, ValidationError
from oncograph.settings import Settings
from oncograph.sources.faults import FaultConfig, FaultDecision, FaultInjector
from oncograph.sources.gdc.client import GdcRequestError
from oncograph.sources.gdc.mirror import MirrorStore, serve_mirror
from oncograph.sources.gdc.mirror.data_files import (
    STAND_IN_NAMESPACE,
    DataFiles,
    parse_range,
    stand_in_file_id,
)

REPO = Path(__file__).resolve().parents[3]
WSI = REPO / "data" / "wsi"
SHA256 = dict(
    reversed(line.split()) for line in (WSI / "SHA256SUMS").read_text().splitlines() if line.strip()
)
CMU = "CMU-1-Small-Region.svs"
TCGA = "tcga-cr-7395-01a-01-ts1.svs"
NDPI = "test3-DAPI-2-387.ndpi"
CMU_MD5 = "1ad6e35c9d17e4d85fb7e3143b328efe"  # data/wsi/SOURCES.md
CONTROLLED = orjson.loads((REPO / "data/gdc/gdc_api_json/gdc_file_by_uuid_20f45e04.json").read_bytes())[
    "response"
]["data"]  # a real GDC record of a controlled-access VCF
BUCKET = "oncograph-inputs"


def md5_of(name: str) -> str:
    return hashlib.md5((WSI / name).read_bytes()).hexdigest()


def slide_id(name: str) -> str:
    return stand_in_file_id(SHA256[name])


class ScriptedFaults(FaultInjector):
    """The stand-in's fault injector with its decisions given in order (then none): truncations for sure."""

    def __init__(self, *decisions: FaultDecision) -> None:
        super().__init__()
        self.script = list(decisions)

    def decide(self) -> FaultDecision:
        if not self.script:
            return super().decide()
        self.counters.requests += 1
        decision = self.script.pop(0)
        self.counters.truncated += decision.kind == "truncate"
        return decision


@dataclass
class Gdc:
    """The stand-in serving data/wsi (and one real controlled record), and a client that logs its requests."""

    url: str
    settings: Settings
    requests: list[httpx.Request] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=10, event_hooks={"request": [self.requests.append]})

    def fetch(self, name: str, **kwargs: Any) -> LocalInput:
        kwargs.setdefault("expected_md5", md5_of(name))
        with self.client() as client:
            return gdc_input(slide_id(name), self.settings, client=client, **kwargs)

    def ranges(self) -> list[str | None]:
        return [r.headers.get("Range") for r in self.requests]

    def cache(self, name: str) -> Path:
        return self.settings.home_dir / "cache" / "gdc" / slide_id(name)


@pytest.fixture(scope="module")
def wsi_files() -> DataFiles:
    return DataFiles.from_directory(WSI)


@pytest.fixture(scope="module")
def store() -> MirrorStore:
    return MirrorStore.from_documents(files=[CONTROLLED])


def settings_for(home: Path, gdc_url: str = "http://127.0.0.1:9", **kwargs: Any) -> Settings:
    options: dict[str, Any] = {"gdc_max_attempts": 4, "gdc_backoff_base_s": 0.0, "gdc_backoff_max_s": 0.0}
    return Settings(home=home, gdc_url=gdc_url, **{**options, **kwargs})


@pytest.fixture
def serve(tmp_path: Path, store: MirrorStore, wsi_files: DataFiles) -> Iterator[Callable[..., Gdc]]:
    """Start the stand-in with the given faults; a fresh cache under ``tmp_path`` per test."""
    with_faults: list[Any] = []

    def start(faults: FaultInjector | FaultConfig | None = None, **settings: Any) -> Gdc:
        server = serve_mirror(store, faults=faults, data_files=wsi_files)
        url = server.__enter__()
        with_faults.append(server)
        return Gdc(url, settings_for(tmp_path / "home", url, **settings))

    yield start
    for server in with_faults:
        server.__exit__(None, None, None)


def test_stand_in_ids_are_uuid5_of_the_sha256_of_the_real_slides(wsi_files: DataFiles) -> None:
    served = {f.file_name: f for f in wsi_files.values()}
    for name, sha in SHA256.items():
        assert served[name].sha256 == sha
        assert served[name].file_id == stand_in_file_id(sha) == str(uuid.uuid5(STAND_IN_NAMESPACE, sha))
        assert uuid.UUID(served[name].file_id).version == 5
    assert md5_of(CMU) == CMU_MD5
    with pytest.raises(ValidationError):
        stand_in_file_id("not a digest")


def test_download_is_verified_then_reused_without_a_request(serve: Callable[..., Gdc]) -> None:
    gdc = serve()
    seen: list[tuple[int, int]] = []
    first = gdc.fetch(
        CMU, expected_size=(WSI / CMU).stat().st_size, progress=lambda d, t: seen.append((d, t))
    )
    assert first.path == gdc.cache(CMU) / CMU  # the name comes from Content-Disposition
    assert (first.sha256, first.md5, first.size) == (SHA256[CMU], CMU_MD5, (WSI / CMU).stat().st_size)
    assert first.file_id == slide_id(CMU) and first.source_uri == f"{gdc.url}/data/{slide_id(CMU)}"
    assert seen[-1] == (first.size, first.size)
    assert [p.name for p in gdc.cache(CMU).iterdir()] == [CMU]  # no .part left
    assert len(gdc.requests) == 1

    again = gdc.fetch(CMU)
    assert again == first and len(gdc.requests) == 1  # reused: no second request


def test_a_body_cut_short_is_resumed_with_range(serve: Callable[..., Gdc]) -> None:
    faults = ScriptedFaults(
        FaultDecision("truncate", cut_fraction=0.3), FaultDecision("truncate", cut_fraction=0.5)
    )
    gdc = serve(faults)
    got = gdc.fetch(TCGA)
    assert got.sha256 == SHA256[TCGA]
    assert faults.counters.truncated == 2
    first, second, third = gdc.ranges()
    size = (WSI / TCGA).stat().st_size
    assert first is None
    assert second == f"bytes={int(size * 0.3)}-"
    assert third == f"bytes={int(size * 0.3) + int((size - int(size * 0.3)) * 0.5)}-"


def test_random_truncations_and_server_errors_still_end_with_the_right_bytes(
    serve: Callable[..., Gdc],
) -> None:
    faults = FaultInjector(FaultConfig(truncate_rate=0.6, fail_rate=0.2, seed=7))
    gdc = serve(faults, gdc_max_attempts=40)
    assert gdc.fetch(NDPI).sha256 == SHA256[NDPI]
    assert faults.counters.truncated >= 1 and faults.counters.errors >= 1
    assert any(r and r != "bytes=0-" for r in gdc.ranges())


class Killed(BaseException):
    """Stands for the process being killed mid-download (not an error oncograph handles)."""


def test_a_killed_run_leaves_a_part_that_the_next_run_resumes(serve: Callable[..., Gdc]) -> None:
    gdc = serve()

    def kill_after_a_megabyte(done: int, total: int) -> None:
        if done >= 1 << 20:
            raise Killed

    with pytest.raises(Killed):
        gdc.fetch(NDPI, progress=kill_after_a_megabyte)
    (part,) = gdc.cache(NDPI).iterdir()
    kept = part.stat().st_size
    assert part.name == f"{NDPI}.part" and 0 < kept < (WSI / NDPI).stat().st_size

    got = gdc.fetch(NDPI)
    assert got.sha256 == SHA256[NDPI] and got.path.name == NDPI
    assert gdc.ranges() == [None, f"bytes={kept}-"]


@pytest.mark.parametrize("extra", [b"", b"bytes the file does not have"])
def test_a_part_already_whole_or_too_long_gets_416_and_is_finished_or_restarted(
    serve: Callable[..., Gdc], extra: bytes
) -> None:
    gdc = serve()
    gdc.cache(CMU).mkdir(parents=True)
    (gdc.cache(CMU) / f"{CMU}.part").write_bytes((WSI / CMU).read_bytes() + extra)
    assert gdc.fetch(CMU).sha256 == SHA256[CMU]
    size = (WSI / CMU).stat().st_size
    expected = [f"bytes={size}-"] if not extra else [f"bytes={size + len(extra)}-", None]
    assert gdc.ranges() == expected


def test_an_md5_mismatch_is_an_error_and_leaves_nothing_in_the_cache(serve: Callable[..., Gdc]) -> None:
    gdc = serve()
    with pytest.raises(SourceError, match="does not match its record: md5") as caught:
        gdc.fetch(CMU, expected_md5=md5_of(TCGA))
    assert "deleted" in str(caught.value)
    assert list(gdc.cache(CMU).iterdir()) == []
    with pytest.raises(SourceError, match="bytes where the record says 12"):
        gdc.fetch(CMU, expected_size=12)
    assert list(gdc.cache(CMU).iterdir()) == []


def test_a_cached_file_that_no_longer_matches_is_fetched_again(serve: Callable[..., Gdc]) -> None:
    gdc = serve()
    first = gdc.fetch(CMU)
    first.path.write_bytes(b"damaged")
    assert gdc.fetch(CMU).sha256 == SHA256[CMU] and len(gdc.requests) == 2


def test_no_expected_md5_must_be_said_and_is_logged(
    serve: Callable[..., Gdc], caplog: pytest.LogCaptureFixture
) -> None:
    gdc = serve()
    with caplog.at_level(logging.WARNING, logger="oncograph.embeddings.inputs"):
        got = gdc.fetch(CMU, expected_md5=None)
    assert got.md5 == CMU_MD5 and "without an md5 check" in caplog.text


@pytest.mark.parametrize(
    "file_id",
    [
        "not-a-uuid",
        "../../etc/passwd",
        "",
        f"{{{uuid.uuid4()}}}",
        uuid.uuid4().hex,
        f"urn:uuid:{uuid.uuid4()}",
    ],
)
def test_a_bad_file_id_is_refused_before_any_request(tmp_path: Path, file_id: str) -> None:
    requests: list[httpx.Request] = []
    with (
        httpx.Client(event_hooks={"request": [requests.append]}) as client,
        pytest.raises(ValidationError, match="not a GDC file id") as caught,
    ):
        gdc_input(file_id, settings_for(tmp_path), expected_md5=None, client=client)
    assert caught.value.hint and requests == [] and not (tmp_path / "cache").exists()


def test_a_bad_expected_md5_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not an md5"):
        gdc_input(str(uuid.uuid4()), settings_for(tmp_path), expected_md5="abc")


def test_an_unknown_id_is_not_found(serve: Callable[..., Gdc]) -> None:
    gdc = serve()
    unknown = str(uuid.uuid4())
    with pytest.raises(NotFoundError, match=unknown) as caught:
        gdc_input(unknown, gdc.settings, expected_md5=None)
    assert caught.value.hint
    assert not any(p.is_file() for p in (gdc.settings.home_dir / "cache").rglob("*"))


def test_a_controlled_file_needs_a_token_and_is_not_fetched(serve: Callable[..., Gdc]) -> None:
    gdc = serve()
    with pytest.raises(GdcRequestError, match="needs a GDC token") as caught:
        gdc_input(CONTROLLED["file_id"], gdc.settings, expected_md5=None)
    assert caught.value.status_code == 403 and "only fetches open files" in caught.value.hint


def test_an_unreachable_gdc_is_unavailable_after_the_retries(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="failed after 2 attempts"):
        gdc_input(str(uuid.uuid4()), settings_for(tmp_path, gdc_max_attempts=2), expected_md5=None)


def test_the_stand_in_serves_ranges_and_refuses_bad_ones(serve: Callable[..., Gdc]) -> None:
    base = serve().url
    url = f"{base}/data/{slide_id(CMU)}"
    body = (WSI / CMU).read_bytes()
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == body
    assert whole.headers["Content-Length"] == str(len(body))
    assert whole.headers["Content-Disposition"] == f'attachment; filename="{CMU}"'
    tail = httpx.get(url, headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == body[1000:]
    assert tail.headers["Content-Range"] == f"bytes 1000-{len(body) - 1}/{len(body)}"
    for bad in (f"bytes={len(body)}-", "bytes=9-3", "bytes=abc", "bytes=0-1,5-6"):
        refused = httpx.get(url, headers={"Range": bad})
        assert refused.status_code == 416 and refused.headers["Content-Range"] == f"bytes */{len(body)}"
    missing = httpx.get(f"{base}/v0/data/{uuid.uuid4()}")
    assert missing.status_code == 404 and "no data file" in missing.json()["message"]
    assert parse_range("bytes=5-", 10) == (5, 9) and parse_range("bytes=2-99", 10) == (2, 9)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="slide.svs"', "slide.svs"),
        ('attachment; filename="../../../etc/passwd"', "passwd"),
        ('attachment; filename="/abs/path/x.svs"', "x.svs"),
        ('attachment; filename="..\\\\win\\\\evil.svs"', "evil.svs"),
        ('attachment; filename=".."', "FALLBACK"),
        ('attachment; filename=".hidden"', "hidden"),
        ('attachment; filename="a b;c.svs"', "a_b_c.svs"),
        ("attachment; filename*=UTF-8''T%C3%BCbingen%20slide.svs", "T_bingen_slide.svs"),
        ('attachment; filename="x.part"', "FALLBACK"),
        ("attachment", "FALLBACK"),
    ],
)
def test_the_name_from_content_disposition_is_one_safe_file_name(header: str, name: str) -> None:
    assert file_name_from(httpx.Headers({"Content-Disposition": header}), "FALLBACK") == name


def test_local_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "slides"
    (folder / "nested").mkdir(parents=True)
    (folder / ".git").mkdir()
    shutil.copy(WSI / TCGA, folder / TCGA)
    shutil.copy(WSI / CMU, folder / "nested" / CMU)
    shutil.copy(WSI / NDPI, folder / ".git" / NDPI)
    (folder / ".DS_Store").write_bytes(b"hidden")

    got = resolve_inputs([str(folder), str(WSI / CMU), str(folder / TCGA)], settings_for(tmp_path))
    # the folder's files sorted, hidden ones skipped; the slide named again is listed once
    assert [i.path for i in got] == [folder / "nested" / CMU, folder / TCGA, WSI / CMU]
    assert [i.sha256 for i in got] == [SHA256[CMU], SHA256[TCGA], SHA256[CMU]]
    assert got[2].source_uri == str(WSI / CMU) and got[2].md5 == CMU_MD5 and got[2].file_id is None
    assert hash_file(WSI / NDPI) == (SHA256[NDPI], md5_of(NDPI), (WSI / NDPI).stat().st_size)


def test_local_mistakes_are_validation_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-hidden").mkdir()
    (tmp_path / "only-hidden" / ".x").write_text("x")
    cases = {
        str(tmp_path / "missing.svs"): "no such file",
        str(tmp_path / "empty"): "holds no files",
        str(tmp_path / "only-hidden"): "holds no files",
        "https://example.org/slide.svs": "unsupported input",
        "gs://bucket/slide.svs": "unsupported input",
    }
    for uri, message in cases.items():
        with pytest.raises(ValidationError, match=message) as caught:
            resolve_inputs([uri], settings_for(tmp_path))
        assert uri.split("/")[-1] in str(caught.value) and caught.value.hint
    with pytest.raises(ValidationError, match="is a folder"):
        local_input(tmp_path / "empty")


@dataclass
class Moto:
    url: str
    s3: Any

    def put(self, key: str, path: Path) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())


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
            s3.create_bucket(Bucket=BUCKET)
            yield Moto(url, s3)
        finally:
            server.stop()


def test_s3_object_is_downloaded_then_reused_until_it_changes(tmp_path: Path, moto: Moto) -> None:
    settings = settings_for(tmp_path / "home", s3_endpoint_url=moto.url)
    moto.put("slides/CMU.svs", WSI / CMU)
    first = s3_input(f"s3://{BUCKET}/slides/CMU.svs", settings)
    assert first.path == settings.home_dir / "cache" / "s3" / BUCKET / "slides" / "CMU.svs"
    assert (first.sha256, first.md5, first.source_uri) == (
        SHA256[CMU],
        CMU_MD5,
        f"s3://{BUCKET}/slides/CMU.svs",
    )
    inode = first.path.stat().st_ino

    assert s3_input(f"s3://{BUCKET}/slides/CMU.svs", settings) == first
    assert first.path.stat().st_ino == inode  # reused, not downloaded again

    moto.put("slides/CMU.svs", WSI / TCGA)  # the object changes: size and LastModified differ
    assert s3_input(f"s3://{BUCKET}/slides/CMU.svs", settings).sha256 == SHA256[TCGA]
    assert not list((settings.home_dir / "cache" / "s3" / ".tmp").iterdir())


@pytest.mark.parametrize(
    "key",
    ["../../escape.svs", "a/../../../escape.svs", "/../escape.svs", "./.././x/..", "..%2F..%2Fescape.svs"],
)
def test_an_s3_key_with_dot_dot_stays_inside_the_cache(tmp_path: Path, moto: Moto, key: str) -> None:
    settings = settings_for(tmp_path / "home", s3_endpoint_url=moto.url)
    moto.put(key, WSI / CMU)
    got = s3_input(f"s3://{BUCKET}/{key}", settings)
    cache = (settings.home_dir / "cache" / "s3" / BUCKET).resolve()
    assert got.path.resolve().is_relative_to(cache) and got.sha256 == SHA256[CMU]
    assert [p for p in tmp_path.rglob("*") if p.is_file() and not p.resolve().is_relative_to(cache)] == []
    assert got.path == s3_cache_path(settings.home_dir, BUCKET, key)
    assert s3_cache_path(settings.home_dir, BUCKET, "b") != s3_cache_path(settings.home_dir, BUCKET, "a/../b")


def test_an_s3_prefix_expands_to_its_objects(tmp_path: Path, moto: Moto) -> None:
    settings = settings_for(tmp_path / "home", s3_endpoint_url=moto.url)
    for key, name in {
        "batch/b.svs": TCGA,
        "batch/a.svs": CMU,
        "batch/.hidden": CMU,
        "batch/sub/c.ndpi": NDPI,
    }.items():
        moto.put(key, WSI / name)
    got = resolve_inputs([f"s3://{BUCKET}/batch/"], settings)
    assert [i.source_uri for i in got] == [
        f"s3://{BUCKET}/batch/{k}" for k in ("a.svs", "b.svs", "sub/c.ndpi")
    ]
    assert [i.sha256 for i in got] == [SHA256[CMU], SHA256[TCGA], SHA256[NDPI]]
    with pytest.raises(ValidationError, match="no objects under"):
        resolve_inputs([f"s3://{BUCKET}/nothing-here/"], settings)


def test_s3_mistakes_are_clear_errors(tmp_path: Path, moto: Moto, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(tmp_path / "home", s3_endpoint_url=moto.url)
    with pytest.raises(NotFoundError, match="no S3 object"):
        s3_input(f"s3://{BUCKET}/no/such/key.svs", settings)
    with pytest.raises(NotFoundError, match="no S3 bucket 'no-such-bucket'"):
        s3_input("s3://no-such-bucket/key.svs", settings)
    for uri in ("s3://UPPER/key", "s3://a..b/key", f"s3://{BUCKET}/prefix/", f"s3://{BUCKET}"):
        with pytest.raises(ValidationError):
            s3_input(uri, settings)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(SourceError, match="no AWS credentials") as caught:
        s3_input(f"s3://{BUCKET}/slides/CMU.svs", settings)
    assert "AWS_ACCESS_KEY_ID" in caught.value.hint
    assert not (settings.home_dir / "cache" / "s3" / BUCKET).exists()


RUN = "import typer; from oncograph_cli.commands.gdc_server import gdc_server; typer.run(gdc_server)"


def test_gdc_server_serves_a_data_dir(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "files").mkdir(parents=True)
    (mirror / "files" / "controlled.json").write_bytes(orjson.dumps(CONTROLLED))
    args = [sys.executable, "-c", RUN, "--data", str(mirror), "--data-dir", str(WSI), "--port", "0"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = read_url(proc, name="gdc-server")
        got = gdc_input(slide_id(CMU), settings_for(tmp_path / "home", url), expected_md5=CMU_MD5)
        assert got.sha256 == SHA256[CMU]
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert f"/data/{slide_id(CMU)}  {CMU}" in stderr
