"""SQLite: the one place that opens connections (connection policy), migrations, stores."""
from edge.db.connection import connect

__all__ = ["connect"]
