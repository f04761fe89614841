"""The cohort engine: GDC filters over the graph, facets, saved frozen cohorts, survival, similar patients."""
