"""oncograph.sources."""
