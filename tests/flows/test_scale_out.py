"""The scale-out path with the real engines: deployments registered on a Prefect work pool by
``oncograph deployments register``, run by a separate ``prefect worker start`` process, against a real
``prefect server start``, a PostgreSQL server reached by URL, a two-node Ray cluster (``ray start --head`` plus
a second ``ray start --address`` node, token auth) reached by ``RAY_ADDRESS``, and feature files on a real local
S3 endpoint (moto's server) named by ``ONCOGRAPH_FEATURES_ROOT``.

The harvest reads real recorded GDC responses through the local GDC-compatible server; the embed run reads the
three real slides of ``data/wsi``. Expected values come from the recorded documents, the cluster's own node
list, the S3 objects' bytes and SQL written here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from oncograph.sources.gdc.mirror import MirrorStore, build_mirror_directory, serve_mirror

REPO = Path(__file__).resolve().parents[2]
WSI = REPO / "data" / "wsi"
RAY = Path(sys.executable).with_name("ray")
POOL = "oncograph-scale-out"
# moto keeps one S3 state per process, shared by every server started in it: this module's bucket is its own
BUCKET = f"oncograph-features-{uuid.uuid4().hex[:8]}"
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "RAY_USAGE_STATS_ENABLED": "0",
    "COLUMNS": "200",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(args: list[str], env: dict[str, str], timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oncograph_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- without a server: clear errors ------------------------------------------------------------------------


def test_register_without_a_prefect_server_is_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {**QUIET, "PREFECT_HOME": str(tmp_path / "prefect")}
    unset = _cli(["deployments", "register", "--work-pool", POOL], env)
    assert unset.returncode == 2 and "Traceback" not in unset.stderr
    assert "PREFECT_API_URL is not set" in unset.stderr
    nobody = f"http://127.0.0.1:{_free_port()}/api"  # nothing listens there
    down = _cli(["deployments", "register", "--work-pool", POOL], {**env, "PREFECT_API_URL": nobody})
    assert down.returncode == 2 and "Traceback" not in down.stderr
    assert "cannot reach the Prefect server" in down.stderr and nobody in down.stderr


# -- the engines ---------------------------------------------------------------------------------------------


@pytest.fixture()
def prefect_server(tmp_path: Path) -> Iterator[str]:
    """A real ``prefect server start`` on a free port (its own SQLite under the test's PREFECT_HOME).

    It is started here and waited for in the test (:func:`_healthy`), so it boots while the Ray cluster
    starts."""
    port = _free_port()
    env = {**os.environ, **QUIET, "PREFECT_HOME": str(tmp_path / "prefect-server")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        _stop(proc)


def _healthy(url: str, timeout_s: float = 180) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the Prefect server at {url} did not start")


def _stop(*procs: subprocess.Popen[Any], grace_s: float = 60) -> None:
    """SIGTERM to the process groups started here, then SIGKILL to those still running after ``grace_s``."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _token_env() -> dict[str, str]:
    import secrets

    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


@pytest.fixture()
def ray_cluster() -> Iterator[tuple[str, dict[str, str], set[str]]]:
    """A real two-node Ray cluster (as tests/flows/test_embed_ray.py's): a head and a second node of 1 CPU
    each, with a token; yields its address, the clients' environment and the node ids."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **_token_env()}
    temp = Path(f"/tmp/ray-scale-{os.getpid()}-{port}")
    common = [
        "--num-cpus=1",
        "--num-gpus=0",
        "--node-ip-address=127.0.0.1",
        "--block",
        "--disable-usage-stats",
    ]
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            f"--port={port}",
            f"--temp-dir={temp}",
            "--include-dashboard=false",
            *common,
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs = [head]
    try:
        _nodes(address, env, 1)
        procs.append(
            subprocess.Popen(
                [str(RAY), "start", f"--address={address}", *common],
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        yield address, env, _nodes(address, env, 2)
    finally:
        # `ray start --block` shuts its node down gracefully for ~30 s on SIGTERM; nothing here needs that
        _stop(*reversed(procs), grace_s=5)
        # what a node left running (its GCS, raylet, workers) names this cluster's own temp dir
        subprocess.run(["pkill", "-9", "-f", str(temp)], check=False)
        shutil.rmtree(temp, ignore_errors=True)


def _nodes(address: str, env: dict[str, str], n: int, timeout_s: float = 120) -> set[str]:
    probe = (
        "import json,ray,sys; ray.init(address=sys.argv[1], log_to_driver=False); "
        "print(json.dumps(sorted(x['NodeID'] for x in ray.nodes() if x['Alive'])))"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-c", probe, address], capture_output=True, text=True, check=False, env=env
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode == 0 and lines and len(ids := json.loads(lines[-1])) == n:
            return set(ids)
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not reach {n} nodes")


@pytest.fixture()
def s3() -> Iterator[tuple[str, Any, dict[str, str]]]:
    """moto's S3 server on a free port with a features bucket: its URL, a boto3 client, the credentials."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=BUCKET)
        yield url, client, creds
    finally:
        server.stop()


def _api(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One call to the Prefect server, retried on 503: its SQLite answers "database is locked" as 503 while
    the worker and the runs write (Prefect's own client retries these too)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.request(method, url, timeout=10, **kwargs)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        else:
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
        time.sleep(0.5)


def _wait_run(api: str, run_id: str, timeout_s: float = 420) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = _api("GET", f"{api}/flow_runs/{run_id}").json()
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not finish: {run.get('state')}")


def _start_run(api: str, deployment: dict[str, Any], parameters: dict[str, Any]) -> str:
    created = _api(
        "POST", f"{api}/deployments/{deployment['id']}/create_flow_run", json={"parameters": parameters}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _run_logs(api: str, run_id: str) -> str:
    logs = _api(
        "POST", f"{api}/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}
    ).json()
    return "\n".join(str(entry.get("message")) for entry in logs)


@pytest.mark.slow
def test_a_worker_runs_the_harvest_and_the_embedding_on_a_ray_cluster(
    prefect_server: str,
    ray_cluster: tuple[str, dict[str, str], set[str]],
    s3: tuple[str, Any, dict[str, str]],
    fresh_db_url: str,
    gdc_data: Path,
    tmp_path: Path,
) -> None:
    api = _healthy(prefect_server)
    address, ray_env, node_ids = ray_cluster
    s3_url, s3_client, creds = s3
    assert fresh_db_url.startswith("postgresql")  # a server by URL, not the embedded default
    env = {
        **ray_env,
        **QUIET,
        **creds,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "ONCOGRAPH_HOME": str(tmp_path / "home"),
    }

    # registering: a missing pool is named, a process pool takes no image, then --create-pool makes it
    missing = _cli(["deployments", "register", "--work-pool", POOL], env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert f"no work pool {POOL!r}" in missing.stderr and "--create-pool" in missing.stderr
    registered = _cli(["deployments", "register", "--work-pool", POOL, "--create-pool", "--json"], env)
    assert registered.returncode == 0, registered.stderr
    payload = json.loads(registered.stdout)
    assert payload["work_pool"] == {"name": POOL, "type": "process", "created": True}
    by_name = {d["deployment"]: d for d in payload["deployments"]}
    assert set(by_name) == {
        "harvest_gdc/harvest-gdc-nightly",
        "harvest_idc/harvest-idc-weekly",
        "harvest_pdc/harvest-pdc-weekly",
        "embed/embed",
        "export_cohort/export-cohort",
        "process_export_queue/process-export-queue",
    }
    imaged = _cli(["deployments", "register", "--work-pool", POOL, "--image", "oncograph-worker:1"], env)
    assert imaged.returncode == 2 and "takes no image" in imaged.stderr and "Traceback" not in imaged.stderr
    found = _api("POST", f"{api}/deployments/filter", json={}).json()
    deployments = {d["name"]: d for d in found}
    assert {d["work_pool_name"] for d in found} == {POOL}
    assert [s["schedule"]["cron"] for s in deployments["harvest-gdc-nightly"]["schedules"]] == ["0 3 * * *"]
    assert deployments["embed"]["schedules"] == []
    assert deployments["harvest-gdc-nightly"]["entrypoint"] == "oncograph_flows.harvest.harvest_gdc_flow"
    assert deployments["embed"]["pull_steps"] == []  # the worker imports the installed package

    mirror = tmp_path / "mirror"
    build_mirror_directory(gdc_data, mirror)
    store = MirrorStore.from_directory(mirror)
    slides = tmp_path / "slides"
    slides.mkdir()
    for slide in sorted(WSI.glob("*.s*")) + sorted(WSI.glob("*.ndpi")):
        shutil.copy(slide, slides / slide.name)
    with serve_mirror(store) as gdc:
        worker_env = {
            **env,
            "ONCOGRAPH_DATABASE_URL": fresh_db_url,
            "ONCOGRAPH_GDC_URL": gdc,
            "RAY_ADDRESS": address,
            "ONCOGRAPH_EMBED_ACTORS": "2",
            "ONCOGRAPH_EMBED_READER_CPUS": "0.25",
            "ONCOGRAPH_FEATURES_ROOT": f"s3://{BUCKET}/features",
            "ONCOGRAPH_S3_ENDPOINT_URL": s3_url,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_LOGGING_LEVEL": "INFO",  # the worker logs each run it submits (the test asserts it)
        }
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--install-policy", "never"],
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            harvest_id = _start_run(api, deployments["harvest-gdc-nightly"], {"projects": ["TCGA-CHOL"]})
            harvest = _wait_run(api, harvest_id)
            assert harvest["state"]["type"] == "COMPLETED", _run_logs(api, harvest_id)
            embed_id = _start_run(
                api,
                deployments["embed"],
                {"modality": "slide", "paths": [str(slides)], "mpp": 0.25, "batch_size": 32},
            )
            embedded = _wait_run(api, embed_id)
            assert embedded["state"]["type"] == "COMPLETED", _run_logs(api, embed_id)
        finally:
            _stop(worker)
            log.close()
    worker_log = (tmp_path / "worker.log").read_text()
    assert harvest["work_pool_name"] == POOL and embedded["work_pool_name"] == POOL
    assert harvest_id in worker_log and embed_id in worker_log  # this worker process ran both
    assert harvest["infrastructure_pid"] and embedded["infrastructure_pid"]  # each in a process it started

    engine = create_engine(fresh_db_url)
    with engine.connect() as conn:
        runs = {
            r.transform: r
            for r in conn.execute(
                text("SELECT transform, CAST(prefect_flow_run_id AS text) AS fr, status, parameters FROM run")
            )
        }
        patients = set(conn.execute(text("SELECT CAST(case_id AS text) FROM patient")).scalars())
        rows = conn.execute(
            text(
                "SELECT object_id, features_uri, features_sha256, features_bytes, tiles, details "
                "FROM embedding ORDER BY object_id"
            )
        ).all()
    engine.dispose()

    # the harvest: the recorded CHOL cases are the graph's patients, the run names its Prefect flow run
    assert runs["harvest_gdc"].fr == harvest_id and runs["harvest_gdc"].status == "succeeded"
    assert runs["harvest_gdc"].parameters["projects"] == ["TCGA-CHOL"]
    chol = [d for d in store.documents("cases") if (d.get("project") or {}).get("project_id") == "TCGA-CHOL"]
    assert patients == {d["case_id"] for d in chol} and len(chol) > 0

    # the embedding: three slides, encoded on both Ray nodes, their feature files on S3 with the recorded bytes
    assert runs["embed_slides"].fr == embed_id and runs["embed_slides"].status == "succeeded"
    assert len(rows) == 3
    encoded_on = {n for r in rows for n in r.details["encoded_on"]}
    assert encoded_on == node_ids, f"encoder actors ran on {encoded_on}, the cluster's nodes are {node_ids}"
    assert {r.details["read_on"] for r in rows} <= node_ids
    for r in rows:
        assert r.features_uri.startswith(f"s3://{BUCKET}/features/efficientnet-lite0/"), r.features_uri
        body = s3_client.get_object(Bucket=BUCKET, Key=r.features_uri[len(f"s3://{BUCKET}/") :])[
            "Body"
        ].read()
        assert hashlib.sha256(body).hexdigest() == r.features_sha256 and len(body) == r.features_bytes
        assert r.tiles > 0
    assert not list((tmp_path / "home").rglob("*.h5"))  # nothing left on the worker's disk

    # registering again from a checkout on the workers' disk updates the same deployments in place
    not_a_checkout = _cli(["deployments", "register", "--work-pool", POOL, "--source", str(tmp_path)], env)
    assert not_a_checkout.returncode == 2 and "not a checkout of oncograph" in not_a_checkout.stderr
    again = _cli(["deployments", "register", "--work-pool", POOL, "--source", str(REPO), "--json"], env)
    assert again.returncode == 0, again.stderr
    entry = {d["deployment"]: d for d in json.loads(again.stdout)["deployments"]}[
        "harvest_gdc/harvest-gdc-nightly"
    ]
    assert entry["deployment_id"] == deployments["harvest-gdc-nightly"]["id"]
    assert entry["entrypoint"] == "flows/oncograph_flows/harvest.py:harvest_gdc_flow"
    updated = _api("GET", f"{api}/deployments/{entry['deployment_id']}").json()
    assert updated["entrypoint"] == entry["entrypoint"]
    assert updated["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
    ]
    assert [s["schedule"]["cron"] for s in updated["schedules"]] == ["0 3 * * *"]

    # a container pool (as Terraform's kubernetes pool, here without a default image) needs an image
    template = {
        "job_configuration": {"image": "{{ image }}"},
        "variables": {"type": "object", "properties": {"image": {"type": "string", "title": "Image"}}},
    }
    made = _api(
        "POST",
        f"{api}/work_pools/",
        json={"name": "oncograph-k8s", "type": "kubernetes", "base_job_template": template},
    )
    assert made.status_code == 201, made.text
    no_image = _cli(["deployments", "register", "--work-pool", "oncograph-k8s"], env)
    assert no_image.returncode == 2 and "name its image" in no_image.stderr and "--image" in no_image.stderr
    imaged_ok = _cli(
        [
            "deployments",
            "register",
            "--work-pool",
            "oncograph-k8s",
            "--image",
            "registry/oncograph-worker:1",
            "--json",
        ],
        env,
    )
    assert imaged_ok.returncode == 0, imaged_ok.stderr
    embed_entry = {d["deployment"]: d for d in json.loads(imaged_ok.stdout)["deployments"]}["embed/embed"]
    on_k8s = _api("GET", f"{api}/deployments/{embed_entry['deployment_id']}").json()
    assert on_k8s["work_pool_name"] == "oncograph-k8s"
    assert on_k8s["job_variables"] == {"image": "registry/oncograph-worker:1"}
    assert on_k8s["entrypoint"] == "oncograph_flows.embed.embed_flow"
