"""The runs page (see oncograph_ui.views.runs)."""

from oncograph_ui.views import runs

runs.render()
