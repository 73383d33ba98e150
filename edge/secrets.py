"""Registry of secret values (passwords, passphrases) that must never reach a log line.

Settings loading registers every secret it finds; the log filter in :mod:`edge.logs`
replaces any registered value with ``***``. Other modules that obtain secrets at run time
(a technician password, a key file's contents) register them too.
"""
from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_values: set[str] = set()

MASK = "***"


def register(value: str | None) -> None:
    if value and len(value) >= 3:
        with _lock:
            _values.add(value)


def redact(text: str) -> str:
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def clear() -> None:
    """Forget every registered value (tests)."""
    with _lock:
        _values.clear()


def masked(value: Any) -> Any:
    """``value`` with every registered secret masked in each string it holds (dicts, lists).

    For values the device itself produced (a part's status, an error it caught): masking is
    applied to those fields where they are built, never to a whole answer that also echoes
    what a client sent, or the answer would tell the client whether its guess was a secret.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item) for item in value]
    return value
