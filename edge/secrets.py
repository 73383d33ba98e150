"""Registry of secret values (passwords, passphrases) that must never reach a log line.

Settings loading registers every secret it finds; the log filter in :mod:`edge.logs`
replaces any registered value with ``***``, and the password of any ``scheme://user:pass@``
URL (:func:`mask_url`) whether registered or not. Other modules that obtain secrets at run time
(a technician password, a key file's contents) register them too.
"""
from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import unquote

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
    return mask_url(text)


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


# scheme://user:password@ ... The password is everything from the first ':' after the user name
# to the last '@' of the URL (no whitespace or quote in between): cameras take passwords with a
# raw '@' or '/' (admin:Admin@123@host), and hiding too much of a URL is safe, too little is not.
# A user name alone (rtsp://admin@host) is kept as it is. The pieces are shared with every
# reader of a URL's user info (edge.backup.restore_settings), so all read it the same way.
URL_SCHEME = r"[a-z][a-z0-9+.\-]{1,15}"
URL_USER = r"[^/@\s:'\"]*"
URL_PASSWORD = r"[^\s'\"]*"
_URL_USERINFO = re.compile(rf"(?i)\b({URL_SCHEME}://)({URL_USER}):({URL_PASSWORD})@")


def mask_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` URL in it masked
    (``rtsp://admin:***@cam/stream``). Safe on any string; leaves other text alone."""
    if "://" not in text:
        return text
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)


def register_url(url: str) -> None:
    """Register the password inside ``url`` (as written and percent-decoded) as a secret."""
    for match in _URL_USERINFO.finditer(url):
        password = match.group(3)
        register(password)
        register(unquote(password))
