"""``oncograph gdc-server``: builds from raw data or serves a built mirror, prints the URL, stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import typer
from support.servers import read_url
from typer.testing import CliRunner

from oncograph_cli.commands.gdc_server import gdc_server

DATA = Path(__file__).resolve().parents[4] / "data" / "gdc"
RUN = "import typer; from oncograph_cli.commands.gdc_server import gdc_server; typer.run(gdc_server)"


@pytest.mark.parametrize("source", ["raw", "built"])
def test_serves_until_interrupted(source: str, mirror_dir: Path) -> None:
    data = DATA if source == "raw" else mirror_dir
    args = [sys.executable, "-c", RUN, "--data", str(data), "--port", "0", "--latency-ms", "1", "--seed", "3"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = read_url(proc, name="gdc-server")
        status = httpx.get(f"{url}/status", timeout=5).json()
        assert status["data_release"] == "Data Release 45.0 - December 04, 2025"
        total = httpx.get(f"{url}/v0/cases", params={"size": 0}, timeout=5).json()["data"]["pagination"][
            "total"
        ]
        assert total == 1590
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert "GDC mirror stopped" in stderr
    assert ("GDC mirror built in" in stderr) == (source == "raw")


def test_rejects_a_folder_that_is_neither(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(gdc_server)
    result = CliRunner().invoke(app, ["--data", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1 and "is neither a mirror directory" in " ".join(result.output.split())
    bad_rate = CliRunner().invoke(app, ["--data", str(DATA), "--fail-rate", "2"])
    assert bad_rate.exit_code == 1 and "fail_rate must be between 0 and 1" in " ".join(
        bad_rate.output.split()
    )
