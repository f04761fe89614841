"""Embedding on real Ray: the CLI on a local Ray, a SIGKILL mid-run then a resume, and a two-node cluster
(``ray start --head`` plus a second ``ray start --address`` node with its own resources) on which work runs on
both nodes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
WSI = REPO / "data" / "wsi"
RAY = Path(sys.executable).with_name("ray")


def _token_env() -> dict[str, str]:
    import secrets

    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rows(url: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT object_kind, object_id, attached_by, tiles, input_sha256, features_sha256, "
                "CAST(vector AS text) FROM embedding ORDER BY object_kind, object_id"
            )
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def _slides(folder: Path, copies: int = 1) -> Path:
    """The three real slides (and ``copies - 1`` more of each, one trailing byte apart: distinct objects).
    The TCGA fixture states no scale, so runs pass ``--mpp 0.25`` for it (a stand-in value)."""
    folder.mkdir(parents=True)
    for i in range(copies):
        for slide in sorted(WSI.glob("*.s*")) + sorted(WSI.glob("*.ndpi")):
            target = folder / f"{i}-{slide.name}"
            shutil.copy(slide, target)
            if i:
                with target.open("ab") as f:
                    f.write(bytes([i]))
    return folder


def _vectors_close(a: list[tuple], b: list[tuple]) -> None:
    assert [r[:6] for r in a] == [r[:6] for r in b]
    for x, y in zip(a, b, strict=True):
        va = [float(v) for v in x[6].strip("[]").split(",")]
        vb = [float(v) for v in y[6].strip("[]").split(",")]
        assert max(abs(p - q) for p, q in zip(va, vb, strict=True)) < 1e-4


def test_cli_embeds_on_a_local_ray_and_reruns_skip(fresh_db_url: str, tmp_path: Path) -> None:
    folder = _slides(tmp_path / "slides")
    args = ["embed", "slides", "--paths", str(folder), "--json", "--mpp", "0.25"]
    first = run_cli(args, fresh_db_url, tmp_path, timeout=400)
    assert first.returncode == 0, first.stderr
    payload = json.loads(first.stdout)
    assert set(payload) >= {"run_id", "embedded", "skipped", "failed", "unattached", "tiles", "seconds"}
    assert (payload["embedded"], payload["failed"], payload["unattached"]) == (3, 0, 3)
    assert payload["tiles"] > 0
    again = run_cli(args, fresh_db_url, tmp_path, timeout=400)
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["embedded"], json.loads(again.stdout)["skipped"]) == (0, 3)


def test_bad_input_is_a_clear_error(fresh_db_url: str, tmp_path: Path) -> None:
    done = run_cli(["embed", "slides", "--json", "--mpp", "0.25"], fresh_db_url, tmp_path)
    assert done.returncode != 0 and "nothing to embed" in done.stderr and "Traceback" not in done.stderr
    port = _free_port()  # nothing listens there
    unreachable = run_cli(
        ["embed", "slides", "--paths", str(WSI / "CMU-1-Small-Region.svs"), "--json"],
        fresh_db_url,
        tmp_path,
        extra_env={"RAY_ADDRESS": f"127.0.0.1:{port}"},
    )
    assert unreachable.returncode != 0 and "Traceback" not in unreachable.stderr
    assert "Ray cluster" in unreachable.stderr and "RAY_ADDRESS" in unreachable.stderr


def test_sigkill_mid_run_then_resume_gives_the_clean_rows(make_db: Callable[[], str], tmp_path: Path) -> None:
    folder = _slides(tmp_path / "slides", copies=2)
    clean_db, killed_db = make_db(), make_db()
    args = [
        "embed",
        "slides",
        "--paths",
        str(folder),
        "--json",
        "--mpp",
        "0.25",
        "--serial",
        "--batch-size",
        "16",
    ]
    clean = run_cli(args, clean_db, tmp_path / "clean", timeout=600)
    assert clean.returncode == 0, clean.stderr
    env = {
        **os.environ,
        "ONCOGRAPH_DATABASE_URL": killed_db,
        "ONCOGRAPH_HOME": str(tmp_path / "killed" / "home"),
        "PREFECT_HOME": str(tmp_path / "killed" / "prefect"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "oncograph_cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(_rows(killed_db)) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _rows(killed_db)
    assert 2 <= len(partial) < 6, "the kill must land mid-run"
    resumed = run_cli(args, killed_db, tmp_path / "killed", timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["skipped"] == len(partial)
    _vectors_close(_rows(killed_db), _rows(clean_db))
    engine = create_engine(killed_db)
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM run GROUP BY 1")).all())
    engine.dispose()
    assert statuses == {"abandoned": 1, "succeeded": 1}


@pytest.fixture()
def two_node_cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A real Ray cluster on this machine: a head node and a second node, each with 1 CPU of its own."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray clusters authenticate with a token: one per test cluster, given to its nodes and its clients
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **_token_env()}
    temp = Path(f"/tmp/ray-{os.getpid()}-{port}")
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=1",
            "--num-gpus=0",
            f"--temp-dir={temp}",
            '--resources={"head_node": 1}',
            "--node-ip-address=127.0.0.1",
            "--block",
            "--disable-usage-stats",
            "--include-dashboard=false",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    procs = [head]
    try:
        _wait_nodes(address, 1, env)
        second = subprocess.Popen(
            [
                str(RAY),
                "start",
                f"--address={address}",
                "--num-cpus=1",
                "--num-gpus=0",
                '--resources={"second_node": 1}',
                "--node-ip-address=127.0.0.1",
                "--block",
                "--disable-usage-stats",
            ],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(second)
        _wait_nodes(address, 2, env)
        yield address, env
    finally:
        for p in reversed(procs):
            os.killpg(p.pid, signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        # whatever a node left running (its GCS, raylet, workers) names the cluster's own temp dir
        subprocess.run(["pkill", "-9", "-f", str(temp)], check=False)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_nodes(address: str, n: int, env: dict[str, str], timeout_s: float = 120) -> None:
    probe = (
        "import ray,sys; ray.init(address=sys.argv[1], log_to_driver=False); "
        "print(sum(1 for x in ray.nodes() if x['Alive']))"
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, "-c", probe, address], capture_output=True, text=True, check=False, env=env
        )
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(n)]:
            return
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not reach {n} nodes")


def test_two_node_cluster_runs_work_on_both_nodes(
    two_node_cluster: tuple[str, dict[str, str]], fresh_db_url: str, tmp_path: Path
) -> None:
    address, env = two_node_cluster
    folder = _slides(tmp_path / "slides", copies=2)
    done = run_cli(
        ["embed", "slides", "--paths", str(folder), "--json", "--mpp", "0.25", "--batch-size", "32"],
        fresh_db_url,
        tmp_path,
        timeout=600,
        environ=env,
        extra_env={
            "RAY_ADDRESS": address,
            "ONCOGRAPH_EMBED_ACTORS": "2",
            "ONCOGRAPH_EMBED_READER_CPUS": "0.25",
        },
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["embedded"] == 6 and payload["failed"] == 0
    engine = create_engine(fresh_db_url)
    with engine.connect() as conn:
        details = [r[0] for r in conn.execute(text("SELECT details FROM embedding"))]
    engine.dispose()
    read_on = {d["read_on"] for d in details}
    encoded_on = {n for d in details for n in d["encoded_on"]}
    assert len(encoded_on) == 2, f"encoder actors ran on {encoded_on}"
    assert len(read_on | encoded_on) == 2
