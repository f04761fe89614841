"""``python -m oncograph_cli`` runs the ``oncograph`` command."""

from oncograph_cli.main import app

app()
