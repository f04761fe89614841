"""The cohorts page (see oncograph_ui.views.cohorts)."""

from oncograph_ui.views import cohorts

cohorts.render()
