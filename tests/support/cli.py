"""Run the ``oncograph`` command in a real subprocess against a given database (quiet, offline Prefect)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    args: list[str], db_url: str, tmp_path: Path, timeout: int = 240
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ONCOGRAPH_DATABASE_URL": db_url,
        "ONCOGRAPH_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "oncograph_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
