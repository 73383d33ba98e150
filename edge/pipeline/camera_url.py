"""A camera's URL with its credentials: put together for opening, masked for showing.

A camera may carry credentials inside ``source`` (``rtsp://user:pass@host/path``) or as the
separate settings ``username`` and ``password`` / ``password_file``. Either way the password is
registered with :mod:`edge.secrets`, so no log line, status answer or MQTT message shows it,
and :func:`display_source` is what every message names the camera by.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from edge import secrets
from edge.errors import FaceproError

PASSWORD_FILE_MAX_BYTES = 4096


class CredentialError(FaceproError):
    """A camera's username/password settings cannot be used; the message names the key."""


def display_source(camera: dict[str, Any]) -> str:
    """The camera's source as it may be shown: any password in it replaced by ``***``."""
    return secrets.mask_url(str(camera.get("source")))


def read_password_file(path: str | os.PathLike[str], label: str = "password_file") -> str:
    """The first line of a password file (at most 4 KiB), registered as a secret."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(PASSWORD_FILE_MAX_BYTES + 1)
    except FileNotFoundError:
        raise CredentialError(f"{label} {p}: file not found") from None
    except OSError as exc:
        raise CredentialError(f"{label} {p}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > PASSWORD_FILE_MAX_BYTES:
        raise CredentialError(f"{label} {p}: larger than {PASSWORD_FILE_MAX_BYTES} bytes, not a password file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialError(f"{label} {p}: not UTF-8 text") from None
    lines = text.splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise CredentialError(f"{label} {p}: the file is empty")
    secrets.register(password)
    return password


def camera_password(camera: dict[str, Any]) -> str | None:
    if camera.get("password"):
        secrets.register(camera["password"])
        return str(camera["password"])
    if camera.get("password_file"):
        return read_password_file(camera["password_file"], f"camera {camera.get('name')!r}: password_file")
    return None


def open_url(camera: dict[str, Any]) -> str:
    """The URL to open: ``source`` with ``username``/``password`` put in when they are set
    (percent-encoded); a user name or password already in the URL is replaced by them."""
    source = str(camera["source"])
    secrets.register_url(source)
    username = camera.get("username")
    password = camera_password(camera)
    if not username and password is None:
        return source
    parts = urlsplit(source)
    host = parts.netloc.rsplit("@", 1)[-1]
    if not username:
        old = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
        username = old.split(":", 1)[0]
    userinfo = quote(str(username), safe="")
    if password is not None:
        secrets.register(quote(password, safe=""))
        userinfo += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))

