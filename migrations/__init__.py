"""Schema migrations, shipped inside the wheel as the package edge.migrations."""
