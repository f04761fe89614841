"""``oncograph ui``: run the Streamlit cohort builder (``oncograph_ui/app.py``) against the REST API."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from oncograph_cli.output import console, exit_with_error


def ui_command(port: int, *, host: str = "127.0.0.1", api_url: str | None = None) -> list[str]:
    """The ``streamlit run`` command line of the UI (headless, no usage statistics, no file watcher)."""
    import oncograph_ui

    app = Path(oncograph_ui.__file__).resolve().parent / "app.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
        "--client.showErrorDetails", "none",
    ]  # fmt: skip


def ui_env(api_url: str | None, api_key: str | None = None) -> dict[str, str]:
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    if api_url:
        env["ONCOGRAPH_API_URL"] = api_url
    if api_key:
        env["ONCOGRAPH_API_KEY"] = api_key
    return env


def ui(
    port: int = typer.Option(8501, help="Port of the UI."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
    api_url: str = typer.Option(
        None, "--api-url", envvar="ONCOGRAPH_API_URL", help="The REST API (default: http://127.0.0.1:8000)."
    ),
) -> None:
    """Run the Streamlit cohort builder until Ctrl-C; it talks to the REST API at ONCOGRAPH_API_URL."""
    try:
        import streamlit  # noqa: F401
    except ImportError:
        exit_with_error("the UI needs streamlit: pip install 'oncograph[ui]'")
    console.print(
        f"oncograph UI on http://{host}:{port} (API: {api_url or 'http://127.0.0.1:8000'})", highlight=False
    )
    sys.stdout.flush()
    # this process becomes Streamlit: a signal to it (Ctrl-C, a supervisor's SIGTERM) stops the UI itself,
    # and no child outlives it
    command = ui_command(port, host=host)
    os.execve(command[0], command, ui_env(api_url))
