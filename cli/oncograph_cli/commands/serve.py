"""``oncograph serve``: run the REST API (uvicorn) on the configured database, with an export worker on a
background thread (``--no-worker`` when ``oncograph worker`` processes run elsewhere).

``--workers N`` runs N uvicorn processes on one port, like N replicas behind a load balancer: each builds its
own cohort index and answer cache from PostgreSQL (ADR 0010), so N processes use N cores for facet answers, at
N times the index's memory. The export worker thread stays in the supervising process."""

from __future__ import annotations

import os
import socket

import typer

from oncograph.db import session_factory
from oncograph.errors import OncographError
from oncograph.export.worker import start_worker_thread
from oncograph.settings import get_settings
from oncograph_cli.context import migrated_engine
from oncograph_cli.output import console, exit_with_error


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    log_level: str = typer.Option("info", help="uvicorn log level: critical, error, warning, info, debug."),
    worker: bool = typer.Option(
        True, "--worker/--no-worker", help="Run queued exports on a background thread of this process."
    ),
    workers: int = typer.Option(
        1,
        min=1,
        help="API processes on this port (each with its own cohort index: more cores, more memory).",
    ),
) -> None:
    """Serve the REST API until Ctrl-C (OpenAPI docs at /docs). The database must be migrated."""
    import uvicorn

    from oncograph_api.app import create_app

    try:
        engine = migrated_engine()
    except OncographError as exc:
        exit_with_error(str(exc))
    stop = None
    if worker:
        _, stop = start_worker_thread(session_factory(engine), endpoint_url=get_settings().s3_endpoint_url)
    console.print(
        f"oncograph API on http://{host}:{port} (docs at /docs)"
        + (f", {workers} processes" if workers > 1 else "")
        + (", with an export worker" if worker else ""),
        highlight=False,
    )
    try:
        if workers == 1:
            uvicorn.run(create_app(engine), host=host, port=port, log_level=log_level.lower(), reload=False)
        else:
            # the processes import the app by name and read the database from the environment: the server
            # this process reached (the embedded one it started, or the configured URL), not a new embedded one
            os.environ["ONCOGRAPH_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
            try:
                sock = listening_socket(host, port)
            except OSError as exc:
                exit_with_error(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
            from uvicorn.supervisors import Multiprocess  # uvicorn's supervisor: it restarts a dead process

            config = uvicorn.Config(
                "oncograph_api.app:create_app",
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level=log_level.lower(),
            )
            Multiprocess(config, sockets=[sock]).run()
    finally:
        if stop is not None:
            stop.set()


def listening_socket(host: str, port: int) -> socket.socket:
    """The TCP socket the API processes share, created as a TCP socket (``IPPROTO_TCP``).

    uvicorn's own one for ``workers > 1`` is ``socket.socket(family)`` (protocol 0); asyncio sets
    ``TCP_NODELAY`` only on connections of a socket whose protocol is TCP, so every response then waited for
    the client's delayed ACK (Nagle): 44 ms per request on a keep-alive connection instead of 1.2 ms, measured
    on a trivial app."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
