"""``oncograph serve``: run the REST API (uvicorn) on the configured database, with an export worker on a
background thread (``--no-worker`` when ``oncograph worker`` processes run elsewhere)."""

from __future__ import annotations

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
        + (", with an export worker" if worker else ""),
        highlight=False,
    )
    try:
        uvicorn.run(create_app(engine), host=host, port=port, log_level=log_level.lower(), reload=False)
    finally:
        if stop is not None:
            stop.set()
