"""oncograph_flows."""
