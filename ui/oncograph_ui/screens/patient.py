"""The patient page (see oncograph_ui.views.patient)."""

from oncograph_ui.views import patient

patient.render()
