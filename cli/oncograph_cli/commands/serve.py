"""``oncograph serve``: run the REST API (uvicorn) on the configured database."""

from __future__ import annotations

import typer

from oncograph.errors import OncographError
from oncograph_cli.context import migrated_engine
from oncograph_cli.output import console, exit_with_error


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    log_level: str = typer.Option("info", help="uvicorn log level: critical, error, warning, info, debug."),
) -> None:
    """Serve the REST API until Ctrl-C (OpenAPI docs at /docs). The database must be migrated."""
    import uvicorn

    from oncograph_api.app import create_app

    try:
        engine = migrated_engine()
    except OncographError as exc:
        exit_with_error(str(exc))
    console.print(f"oncograph API on http://{host}:{port} (docs at /docs)", highlight=False)
    uvicorn.run(create_app(engine), host=host, port=port, log_level=log_level.lower(), reload=False)
