"""oncograph_ui."""
