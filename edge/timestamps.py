"""Every timestamp format the service writes, in one place.

* ISO 8601 UTC with a ``Z`` (APIs, MQTT, logs of state): :func:`iso_utc`;
* SQLite's UTC text ``YYYY-MM-DD HH:MM:SS[.fff]`` (what ``strftime('now')`` stores):
  :func:`db_text` and :func:`from_db`;
* the compact form in file names (``20250101T120000Z``): :func:`compact`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

DB_FORMAT = "%Y-%m-%d %H:%M:%S"


def _moment(value: float | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(float(value), timezone.utc)


def iso_utc(value: float | datetime | None, *, ms: bool = False) -> str | None:
    """Epoch seconds or a datetime as ``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` (truncated, not rounded)."""
    if value is None:
        return None
    moment = _moment(value)
    if ms:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso(*, ms: bool = False) -> str:
    return iso_utc(datetime.now(timezone.utc), ms=ms)  # type: ignore[return-value]


def db_text(value: float | datetime | None = None) -> str:
    """``value`` (default: now) as SQLite's UTC text, to the second."""
    return _moment(datetime.now(timezone.utc) if value is None else value).strftime(DB_FORMAT)


def from_db(text: str | None) -> datetime | None:
    """SQLite's UTC text (fractions ignored) as an aware datetime; None for empty."""
    if not text:
        return None
    return datetime.strptime(text[:19], DB_FORMAT).replace(tzinfo=timezone.utc)


def iso_from_db(value: Any) -> str | None:
    """A stored timestamp (SQLite text, ISO text or epoch seconds) as ISO 8601 ``Z``: to the
    millisecond where it has a fraction, else to the second. Text that is none of these is
    returned as it is."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(float(value), tz=timezone.utc)
    else:
        text = str(value).strip().replace(" ", "T", 1)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return str(value)
        moment = _moment(moment)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def compact(value: float | datetime) -> str:
    """``YYYYMMDDTHHMMSSZ``, for names that sort by time."""
    return _moment(value).strftime("%Y%m%dT%H%M%SZ")
