"""``oncograph pdc-server``: serves the recordings, prints the URL, injects faults, stops on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import typer
from support.servers import read_url
from typer.testing import CliRunner

from oncograph_cli.commands.pdc_server import pdc_server

RUN = "import typer; from oncograph_cli.commands.pdc_server import pdc_server; typer.run(pdc_server)"


def test_serves_until_interrupted(pdc_data: Path) -> None:
    args = [sys.executable, "-c", RUN, "--data", str(pdc_data), "--port", "0", "--fail-field", "uiStudy"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = read_url(proc, name="pdc-server")
        assert url.endswith("/graphql")
        catalog = httpx.post(url, json={"query": "{ studyCatalog { pdc_study_id } }"}, timeout=5).json()
        assert [e["pdc_study_id"] for e in catalog["data"]["studyCatalog"]] == [
            "PDC000109",
            "PDC000110",
            "PDC000111",
        ]
        failing = httpx.post(url, json={"query": "{ uiStudy { cases_count } }"}, timeout=5).json()
        assert (
            failing["data"] == {"uiStudy": None}
            and "simulated resolver failure" in failing["errors"][0]["message"]
        )
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    text = " ".join(stderr.split())
    assert "PDC stand-in stopped" in text and "release 'pdc recorded responses sha256:" in text


def test_rejects_bad_options(tmp_path: Path, pdc_data: Path) -> None:
    app = typer.Typer()
    app.command()(pdc_server)
    runner = CliRunner()
    no_sdl = runner.invoke(app, ["--data", str(tmp_path), "--port", "0"])
    assert no_sdl.exit_code == 1 and "no PDC GraphQL SDL" in " ".join(no_sdl.output.split())
    bad_rate = runner.invoke(app, ["--data", str(pdc_data), "--fail-rate", "2"])
    assert bad_rate.exit_code == 1 and "fail_rate must be between 0 and 1" in " ".join(
        bad_rate.output.split()
    )
    bad_field = runner.invoke(app, ["--data", str(pdc_data), "--port", "0", "--fail-field", "nope"])
    assert bad_field.exit_code == 1 and "names no root field" in " ".join(bad_field.output.split())
