"""The ``oncograph`` command: the composition root (it may import every package; nothing imports it).

Commands are loaded lazily: ``COMMANDS`` names each one's module, attribute and one-line help, and a
command's module (with the database, pandas, Prefect ... it needs) is imported only when that command runs or
shows its own help. So ``oncograph --help`` and a mistyped command answer at once. To add a command, add a
line to ``COMMANDS`` (``tests/cli/test_cli_output.py`` checks each line's help against the command's own).
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

import typer
import typer._click as click  # typer 0.29 vendors click: its groups and commands are these classes
from typer.core import TyperCommand, TyperGroup


class Lazy(NamedTuple):
    module: str
    attribute: str
    help: str
    """The first line of the command's help (shown by ``oncograph --help`` without importing the module)."""


_C = "oncograph_cli.commands."
COMMANDS: dict[str, Lazy] = {
    "status": Lazy(_C + "status", "status", "Show what the graph holds and where it came from."),
    "lineage": Lazy(
        _C + "lineage",
        "lineage",
        "Show the graph rows an id names, the document versions, runs and releases behind them.",
    ),
    "link": Lazy(
        _C + "link",
        "link",
        "Link IDC patients and PDC cases to GDC patients by explicit evidence only (see oncograph.linking).",
    ),
    "gdc-server": Lazy(
        _C + "gdc_server",
        "gdc_server",
        "Serve a local GDC-compatible API (/status, /cases, /files, /projects, /data) until Ctrl-C.",
    ),
    "pdc-server": Lazy(
        _C + "pdc_server",
        "pdc_server",
        "Serve a local PDC-compatible GraphQL API (POST /graphql) from the recorded answers until Ctrl-C.",
    ),
    "serve": Lazy(
        _C + "serve",
        "serve",
        "Serve the REST API until Ctrl-C (OpenAPI docs at /docs). The database must be migrated.",
    ),
    "ui": Lazy(
        _C + "ui",
        "ui",
        "Run the Streamlit cohort builder until Ctrl-C; it talks to the REST API at ONCOGRAPH_API_URL.",
    ),
    "demo": Lazy(
        _C + "demo", "demo", "Run everything end to end on the bundled real data and print the status."
    ),
    "facets": Lazy(
        _C + "facets",
        "facets_cmd",
        "Count the patients a filter selects, per value of each field (histograms for numeric fields).",
    ),
    "fields": Lazy(_C + "facets", "fields_cmd", "List the fields filters and facets may use."),
    "export": Lazy(
        _C + "export",
        "export",
        "Export a cohort version: Parquet tables, Croissant, manifests and patient-level splits.",
    ),
    "worker": Lazy(
        _C + "worker",
        "worker",
        "Run export jobs: claim queued exports (and those of dead workers) and run them.",
    ),
    "db": Lazy(_C + "db", "app", "Database schema."),
    "ingest": Lazy(_C + "ingest", "app", "Bring data into the graph."),
    "releases": Lazy(_C + "releases", "app", "Source data releases."),
    "schedule": Lazy(_C + "schedule", "app", "Scheduled ingestion (Prefect deployments)."),
    "deployments": Lazy(
        _C + "deployments", "app", "Prefect work-pool deployments (harvests, embed, export)."
    ),
    "users": Lazy(_C + "users", "app", "API principals (users and services) and their keys."),
    "grants": Lazy(
        _C + "users", "grants_app", "Grants: which principals may see which projects' controlled data."
    ),
    "projects": Lazy(_C + "users", "projects_app", "Mark projects controlled (visible only with a grant)."),
    "cohort": Lazy(
        _C + "cohort",
        "app",
        "Saved cohorts: frozen patient lists with the releases they were computed against.",
    ),
    "embed": Lazy(
        _C + "embed",
        "app",
        "Embed slides, radiology series and clinical text with the registered encoders (on Ray).",
    ),
    "encoders": Lazy(
        _C + "encoders",
        "encoders",
        "List the encoders and register foundation-model checkpoints.",
    ),
}


def load_command(name: str) -> click.Command:
    """The click command ``name`` of ``COMMANDS`` (imports its module)."""
    import importlib

    entry = COMMANDS[name]
    target: Any = getattr(importlib.import_module(entry.module), entry.attribute)
    if name == "ingest":  # the ingest group gathers commands of several modules
        from oncograph_cli.commands.ingest_idc import ingest_idc
        from oncograph_cli.commands.ingest_pdc import ingest_pdc

        if not any(c.name in ("idc", "pdc") for c in target.registered_commands):
            target.command("idc")(ingest_idc)
            target.command("pdc")(ingest_pdc)
    command: click.Command
    if isinstance(target, typer.Typer):
        # a group even with one command (`db upgrade`), which get_command would make the command itself
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """The root group: lists ``COMMANDS`` by their stored help, imports a command's module only to run it."""

    _listing = False
    _loaded: dict[str, click.Command] = {}  # noqa: RUF012  (one cache for the process)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        if self._listing:
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name].help, short_help=COMMANDS[cmd_name].help)
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load_command(cmd_name)
        return self._loaded[cmd_name]

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        LazyGroup._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            LazyGroup._listing = False


app = typer.Typer(
    name="oncograph",
    help="A provenance-tracked, patient-centric graph of NCI CRDC cancer data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=LazyGroup,
)


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
