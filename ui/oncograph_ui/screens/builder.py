"""The builder page (see oncograph_ui.views.builder)."""

from oncograph_ui.views import builder

builder.render()
