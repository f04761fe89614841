"""oncograph_cli."""
