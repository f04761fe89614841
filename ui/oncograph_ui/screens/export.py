"""The export page (see oncograph_ui.views.export)."""

from oncograph_ui.views import export

export.render()
