"""oncograph_api."""
