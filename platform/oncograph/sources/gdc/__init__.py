"""oncograph.sources.gdc."""
