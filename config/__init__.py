"""Shipped default settings, inside the wheel as the package edge.defaults."""
