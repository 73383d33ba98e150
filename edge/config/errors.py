"""The one settings error."""
from __future__ import annotations

from edge.errors import BadInput


class ConfigError(BadInput):
    """A settings problem; the message names the file and the key."""
