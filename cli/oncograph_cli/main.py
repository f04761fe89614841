"""The ``oncograph`` command: the composition root (it may import every package; nothing imports it)."""

from __future__ import annotations

import logging
import os

import typer

from oncograph_cli.commands import db, ingest, releases, schedule, users
from oncograph_cli.commands.cohort import app as cohort_app
from oncograph_cli.commands.demo import demo
from oncograph_cli.commands.export import export
from oncograph_cli.commands.facets import facets_cmd, fields_cmd
from oncograph_cli.commands.gdc_server import gdc_server
from oncograph_cli.commands.ingest_idc import ingest_idc
from oncograph_cli.commands.ingest_pdc import ingest_pdc
from oncograph_cli.commands.lineage import lineage
from oncograph_cli.commands.link import link
from oncograph_cli.commands.pdc_server import pdc_server
from oncograph_cli.commands.serve import serve
from oncograph_cli.commands.status import status

app = typer.Typer(
    name="oncograph",
    help="A provenance-tracked, patient-centric graph of NCI CRDC cancer data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(ingest.app, name="ingest")
app.add_typer(releases.app, name="releases")
app.add_typer(schedule.app, name="schedule")
app.add_typer(users.app, name="users")
app.add_typer(users.grants_app, name="grants")
app.add_typer(users.projects_app, name="projects")
app.command("status")(status)
app.command("lineage")(lineage)
app.command("link")(link)
app.command("gdc-server")(gdc_server)
app.command("pdc-server")(pdc_server)
app.command("serve")(serve)
ingest.app.command("idc")(ingest_idc)
ingest.app.command("pdc")(ingest_pdc)
app.command("demo")(demo)
app.add_typer(cohort_app, name="cohort")
app.command("facets")(facets_cmd)
app.command("fields")(fields_cmd)
app.command("export")(export)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for name, value in {
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }.items():
        os.environ.setdefault(name, value)
