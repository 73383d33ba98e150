r"""Logging to stderr, one line per record: time, level, component, message.

journald keeps stderr lines as they are, so no colours and no multi-line records
(tracebacks are folded onto the same line). Registered secrets are masked.

Text from outside (a request path, a file name, a camera's or broker's message) can carry
control characters: a NUL, an ANSI escape that rewrites the terminal, a newline that forges
a log line. Every control character in a record's arguments is escaped (``\x00``, ``\n``)
before the message is formatted; in the message as a whole every control character but the
newlines of a traceback (folded to `` | ``) is escaped too.
"""
from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any, TextIO

from edge import secrets

LEVELS = ("debug", "info", "warning", "error", "critical")


# C0 and C1 control characters, DEL, and the Unicode line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}.get(code) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_control(text: str, keep_newlines: bool = False) -> str:
    r"""``text`` with its control characters written as escapes (``\x00``, ``\n``, ``\x1b``)."""
    return (_CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL).sub(_escape_char, text)


def _escape_arg(value: Any) -> Any:
    if isinstance(value, (int, float)) or value is None:
        return value  # keeps %d and %.1f working
    return escape_control(value if isinstance(value, str) else str(value))


def _message(record: logging.LogRecord) -> str:
    args = record.args
    if not args:
        return str(record.msg)
    try:
        if isinstance(args, dict):
            return str(record.msg) % {k: _escape_arg(v) for k, v in args.items()}
        return str(record.msg) % tuple(_escape_arg(v) for v in args)
    except (TypeError, ValueError):
        return record.getMessage()


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        component = record.name[5:] if record.name.startswith("edge.") else record.name
        message = _message(record)
        if record.exc_info:
            message = f"{message} | {self.formatException(record.exc_info)}"
        message = escape_control(secrets.redact(message), keep_newlines=True).replace("\n", " | ")
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
