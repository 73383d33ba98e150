"""Logging to stderr, one line per record: time, level, component, message.

journald keeps stderr lines as they are, so no colours and no multi-line records
(tracebacks are folded onto the same line). Registered secrets are masked.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from edge import secrets

LEVELS = ("debug", "info", "warning", "error", "critical")


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        component = record.name[5:] if record.name.startswith("edge.") else record.name
        message = record.getMessage()
        if record.exc_info:
            message = f"{message} | {self.formatException(record.exc_info)}"
        message = secrets.redact(message).replace("\n", " | ")
        return f"{stamp}.{int(record.msecs):03d}Z {record.levelname:<7} {component}: {message}"


def setup_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Configure the root logger once; safe to call again (replaces the handler)."""
    if level.lower() not in LEVELS:
        raise ValueError(f"--log-level: {level!r} is not one of {', '.join(LEVELS)}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_facepro", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._facepro = True  # type: ignore[attr-defined]
    handler.setFormatter(OneLineFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter stays at warning unless we debug.
    for noisy in ("waitress", "werkzeug", "smbprotocol", "spnego", "urllib3", "PIL"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level.lower() == "debug" else logging.WARNING)
