"""oncograph.ingest."""
