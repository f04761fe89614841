"""``oncograph db ...``: schema migrations."""

from __future__ import annotations

import typer

from oncograph.db import get_engine
from oncograph.db.migrate import current_revision, upgrade
from oncograph.errors import OncographError
from oncograph_cli.output import exit_with_error, out, print_json

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd(json_out: bool = typer.Option(False, "--json", help="Print a JSON result.")) -> None:
    """Migrate the database (embedded by default, or ONCOGRAPH_DATABASE_URL) to the latest schema."""
    try:
        engine = get_engine()
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    except OncographError as exc:
        exit_with_error(str(exc))
    if json_out:
        print_json({"from": before, "to": after, "url": engine.url.render_as_string(hide_password=True)})
    else:
        out.print(f"schema at revision [bold]{after}[/] (was {before or 'empty'})")
