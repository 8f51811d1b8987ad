"""Grid workers' locations: registry, position pipeline, grid boundaries, tracks."""
