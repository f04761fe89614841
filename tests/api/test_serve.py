"""``oncograph serve`` in a real subprocess: uvicorn serves the app on the configured database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.db import create_empty_database
from support.servers import free_port

pytestmark = pytest.mark.integration


def first_health(process: subprocess.Popen[bytes], base: str, seconds: float) -> httpx.Response:
    """The first answer of ``/health`` once the server listens (fails if it exits or does not start)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(f"{base}/health", timeout=2)
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, f"the API did not start within {seconds:.0f} s"
            time.sleep(0.3)


def test_serve_answers_health_and_problems(fresh_db_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ONCOGRAPH_DATABASE_URL": fresh_db_url, "ONCOGRAPH_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "oncograph_cli", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        health = first_health(process, base, 60)
        assert health.status_code == 200 and health.json()["database"] == "ok"
        unauthenticated = httpx.get(f"{base}/cohorts", timeout=5)
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"].startswith("application/problem+json")
        assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_serve_refuses_an_unmigrated_database(tmp_path: Path, pg_server_url: str) -> None:
    url = create_empty_database(pg_server_url, f"oncograph_api_empty{os.getpid()}_test")
    env = {**os.environ, "ONCOGRAPH_DATABASE_URL": url, "ONCOGRAPH_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "oncograph_cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    message = " ".join(done.stderr.split())  # rich wraps long lines
    assert "oncograph db upgrade" in message and "Traceback" not in message


def test_serve_with_two_workers_runs_two_api_processes_on_one_port(fresh_db_url: str, tmp_path: Path) -> None:
    import psutil

    port = free_port()
    env = {**os.environ, "ONCOGRAPH_DATABASE_URL": fresh_db_url, "ONCOGRAPH_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "oncograph_cli", "serve", "--port", str(port), "--workers", "2"]
    command += ["--log-level", "warning", "--no-worker"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        health = first_health(process, base, 90)
        assert health.status_code == 200 and health.json()["database"] == "ok"
        # uvicorn's supervisor holds two serving processes (besides multiprocessing's resource tracker)
        deadline = time.monotonic() + 60
        while True:
            serving = [
                c
                for c in psutil.Process(process.pid).children()
                if "multiprocessing.resource_tracker" not in " ".join(c.cmdline())
            ]
            if len(serving) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert len(serving) == 2, [c.cmdline() for c in serving]
        # the port answers as the app whichever process takes the connection
        for _ in range(20):
            problem = httpx.get(f"{base}/cohorts", timeout=5)
            assert problem.status_code == 401
        pids = [c.pid for c in serving]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_the_shared_socket_of_several_workers_gets_nodelay_connections() -> None:
    """asyncio sets TCP_NODELAY only on connections of a TCP-protocol socket; uvicorn's own socket for
    ``--workers`` is protocol 0, so its responses waited on Nagle and delayed ACKs (~40 ms each)."""
    import asyncio

    from oncograph_cli.commands.serve import listening_socket

    sock = listening_socket("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        try:
            return await asyncio.wait_for(seen, 10)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    with pytest.raises(OSError):
        listening_socket("127.0.0.1", busy.getsockname()[1])
    busy.close()
