"""The api and ui images really build and really serve: ``docker/build-local.sh api`` builds
docker/api/Dockerfile with buildah (chroot isolation) on a Debian base made offline by debootstrap, installing the lock from the
wheelhouse; then the image's own commands run in a container of it (``buildah run``: this machine's podman
cannot run containers, docs STACK.md) against a real PostgreSQL:

- the migrate job (``oncograph db upgrade``) brings an empty database to the migrations' head;
- the entrypoint's ``serve`` answers ``/health`` 200 as the non-root user 10001, and the image's own
  HEALTHCHECK command passes;
- with its database gone, ``/health`` answers 503 and the HEALTHCHECK command fails;
- the ui image, built the same way, serves the cohort builder's page and Streamlit's health as user 10001.

Slow (minutes on a cold cache) and needs root, buildah, podman and debootstrap, so it is not in ``make test``:
``make test-images`` runs it, and CI (.ci/run) runs both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from support.db import create_empty_database, drop_database
from support.servers import free_port

import oncograph

# a cold build (debootstrap, the wheelhouse, the install) takes ~4.5 min here: more than the default 600 s per test
pytestmark = [pytest.mark.images, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TAG = "test"
UID = 10001


@dataclass
class Built:
    image: str
    config: dict[str, Any]
    """The image's Docker config (User, Entrypoint, Cmd, Healthcheck, Labels ...)."""
    report: dict[str, Any]
    seconds: float


def build(app: str, folder: Path) -> Built:
    """``docker/build-local.sh APP`` (the base and wheelhouse cached between runs), and the image's config."""
    missing = [tool for tool in ("buildah", "podman", "debootstrap") if shutil.which(tool) is None]
    if missing or os.geteuid() != 0:
        pytest.fail(
            f"the image tests need root and buildah, podman and debootstrap (missing: {missing or 'root'}): "
            "apt-get install -y podman buildah debootstrap, as root"
        )
    report = folder / "report.json"
    image = f"localhost/oncograph-{app}:{TAG}"
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "docker/build-local.sh", "--report", str(report), app],
        cwd=REPO,
        env={**os.environ, "PIP": str(VENV_BIN / "pip"), "IMAGE_TAG": TAG},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"build-local.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    inspected = json.loads(
        subprocess.run(
            ["buildah", "inspect", "--type", "image", image], capture_output=True, text=True, check=True
        ).stdout
    )
    print(f"\n{app} image built in {seconds:.1f} s: {report.read_text()}")
    return Built(image, inspected["Docker"]["config"], json.loads(report.read_text()), seconds)


@contextmanager
def container_of(image: str) -> Iterator[str]:
    """A working container of ``image`` (``buildah from``), removed at the end."""
    name = f"oncograph-test-{image.rsplit('/', 1)[-1].replace(':', '-')}-{os.getpid()}"
    subprocess.run(["buildah", "rm", name], capture_output=True)
    subprocess.run(
        ["buildah", "from", "--pull=never", "--name", name, image], capture_output=True, check=True
    )
    try:
        yield name
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build("api", tmp_path_factory.mktemp("build-api"))


@pytest.fixture(scope="module")
def container(built: Built) -> Iterator[str]:
    with container_of(built.image) as name:
        yield name


@dataclass
class Database:
    url: str
    """The URL as the host reaches it."""
    container_url: str
    """The URL as the container reaches it."""
    mounts: list[str]


SOCKET_DIR = "/tmp/oncograph-pg"


@pytest.fixture()
def empty_database(pg_server_url: str) -> Iterator[Database]:
    """A new database with no tables (the migrate job's starting point) on the tests' PostgreSQL.

    An embedded server listens on a Unix socket only, in its data folder (mode 0700): the container gets that
    socket file bind-mounted into a folder of its own, and a URL that names it. A server reached by TCP
    (ONCOGRAPH_TEST_DATABASE_URL) is reached by the same URL (the container shares the host's network)."""
    name = f"oncograph_image{os.getpid()}_test"
    url = make_url(create_empty_database(pg_server_url, name))
    host = url.query.get("host")
    host = host if isinstance(host, str) else None
    if host and host.startswith("/"):
        socket_file = f"{host}/.s.PGSQL.{url.port or 5432}"
        inside = url.update_query_dict({"host": SOCKET_DIR})
        mounts = [f"--volume={socket_file}:{SOCKET_DIR}/.s.PGSQL.{url.port or 5432}"]
    else:
        inside, mounts = url, []
    yield Database(
        url.render_as_string(hide_password=False), inside.render_as_string(hide_password=False), mounts
    )
    drop_database(pg_server_url, name)


def run_args(container: str, db: Database, *command: str) -> list[str]:
    """``buildah run`` of ``command`` in the container, as the image's user, with the database's URL."""
    return [
        "buildah",
        "run",
        "--isolation",
        "chroot",
        *db.mounts,
        f"--env=ONCOGRAPH_DATABASE_URL={db.container_url}",
        container,
        "--",
        *command,
    ]


def first_answer(proc: subprocess.Popen[str], url: str, seconds: float = 120) -> httpx.Response:
    """The first answer from ``url`` of the server ``proc`` runs (fails if it exits or does not listen)."""
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"{proc.args} exited: {proc.stdout.read() if proc.stdout else ''}"
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"nothing answered {url} within {seconds:.0f} s"
            time.sleep(0.5)


def _stop(proc: subprocess.Popen[str], port: int) -> None:
    """Stop ``buildah run`` and the server it started on ``port`` (it shares the host's process table)."""
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        if "--port" in cmdline and str(port) in cmdline and p.pid not in (proc.pid, os.getpid()):
            p.send_signal(signal.SIGTERM)
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def test_the_image_is_configured_for_a_non_root_api(built: Built) -> None:
    config = built.config
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["oncograph"]
    assert config["Cmd"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "/health" in " ".join(config["Healthcheck"]["Test"])
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "oncograph-api"
    assert labels["org.opencontainers.image.version"] == oncograph.__version__
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"].startswith(head)
    assert set(built.report) >= {"base", "wheelhouse-api", "build-api"}


def test_the_image_holds_the_installed_project_and_no_build_state(container: str) -> None:
    probe = (
        "import os, sys, oncograph, oncograph_api, oncograph_cli; "
        "print(os.getuid(), sys.prefix, oncograph.__file__, os.path.exists('/src'), os.path.exists('/wheels'))"
    )
    out = subprocess.run(
        ["buildah", "run", "--isolation", "chroot", container, "--", "python3", "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    uid, prefix, module, has_src, has_wheels = out.stdout.split()
    assert uid == str(UID)
    assert prefix == "/opt/oncograph"
    assert module.startswith("/opt/oncograph/lib/")  # a regular install, not an editable link to a checkout
    assert (has_src, has_wheels) == ("False", "False")


def test_migrate_job_then_serve_answers_health_and_the_healthcheck_follows_the_database(
    built: Built, container: str, empty_database: Database, pg_server_url: str, template_url: str
) -> None:
    db = empty_database
    started = time.monotonic()
    migrate = subprocess.run(
        run_args(container, db, "oncograph", "db", "upgrade"), capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    migrate_s = time.monotonic() - started
    engine = create_engine(db.url)
    template = create_engine(template_url)
    with engine.connect() as conn, template.connect() as ref:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
            ref.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        )
    engine.dispose()
    template.dispose()

    port = free_port()
    # the image's CMD with this test's port, on the loopback interface (the container shares the host's network)
    serve = subprocess.Popen(
        run_args(container, db, "oncograph", "serve", "--host", "127.0.0.1", "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    healthcheck = run_args(container, db, *built.config["Healthcheck"]["Test"][1:])
    healthcheck = [
        arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in healthcheck
    ]  # its command names the image's port
    try:
        started = time.monotonic()
        answer = first_answer(serve, f"http://127.0.0.1:{port}/health")
        health_s = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"status": "ok", "database": "ok", "version": oncograph.__version__}
        assert subprocess.run(healthcheck, capture_output=True, timeout=60).returncode == 0
        print(f"\nmigrate job {migrate_s:.1f} s; serve to a 200 /health {health_s:.1f} s")

        # its database gone: /health is a 503 problem document and the image's healthcheck fails
        name = make_url(db.url).database
        admin = create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        down = httpx.get(f"http://127.0.0.1:{port}/health", timeout=15)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        assert "database" in down.json()["detail"]
        assert subprocess.run(healthcheck, capture_output=True, timeout=60).returncode != 0
    finally:
        _stop(serve, port)


def test_the_ui_image_serves_the_cohort_builder(tmp_path: Path) -> None:
    ui = build("ui", tmp_path)
    config = ui.config
    assert config["User"] == f"{UID}:{UID}"
    assert (config["Entrypoint"], config["Cmd"]) == (
        ["oncograph"],
        ["ui", "--host", "0.0.0.0", "--port", "8501"],
    )
    port = free_port()
    with container_of(ui.image) as name:
        # the UI talks only to the API (ONCOGRAPH_API_URL); its page and health answer without one
        command = ["oncograph", "ui", "--host", "127.0.0.1", "--port", str(port)]
        environment = ["--env=ONCOGRAPH_API_URL=http://127.0.0.1:9"]
        serve = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", *environment, name, "--", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            started = time.monotonic()
            health = first_answer(serve, f"http://127.0.0.1:{port}/_stcore/health")
            assert (health.status_code, health.text) == (200, "ok")
            page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
            assert page.status_code == 200 and "<title>" in page.text
            check = [
                a.replace("127.0.0.1:8501", f"127.0.0.1:{port}") for a in config["Healthcheck"]["Test"][1:]
            ]
            probe = subprocess.run(
                ["buildah", "run", "--isolation", "chroot", name, "--", *check],
                capture_output=True,
                timeout=60,
            )
            assert probe.returncode == 0, probe.stderr
            print(f"\nui: serve to a 200 /_stcore/health {time.monotonic() - started:.1f} s")
        finally:
            _stop(serve, port)
