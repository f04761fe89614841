"""Run the ``oncograph`` command in a real subprocess against a given database (quiet, offline Prefect)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_cli(
    args: list[str],
    db_url: str,
    tmp_path: Path,
    timeout: int = 240,
    *,
    environ: Mapping[str, str] = os.environ,
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``oncograph ARGS`` in a subprocess whose environment is ``environ`` with the test settings and
    ``extra_env`` over it."""
    env = {
        **environ,
        "ONCOGRAPH_DATABASE_URL": db_url,
        "ONCOGRAPH_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "COLUMNS": "200",
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "oncograph_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
