"""``backup.schedule``: when automatic backups run.

Accepted forms (local time for clock times):

* ``null``            automatic backups off
* ``"hourly"``        every hour
* ``"daily HH:MM"``   once a day at HH:MM local time (``"daily"`` alone means 03:00)
* ``"every N[m|h|d]"`` a fixed interval from the last attempt (at least 5 minutes)

This module imports nothing from the rest of the package so edge.config can use it to
validate settings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from edge.errors import BadInput

_DAILY = re.compile(r"^daily(?:\s+(\d{1,2}):(\d{2}))?$")
_EVERY = re.compile(r"^every\s+(\d+)\s*(m|min|h|d)$")
MIN_INTERVAL = timedelta(minutes=5)


class ScheduleError(BadInput, ValueError):
    """The schedule string cannot be understood; the message says what is accepted."""


@dataclass(frozen=True)
class Schedule:
    text: str
    interval: timedelta | None = None  # fixed interval from the last attempt
    at: tuple[int, int] | None = None  # daily at (hour, minute) local time

    @property
    def period(self) -> timedelta:
        return self.interval if self.interval is not None else timedelta(days=1)

    def next_due(self, last_attempt: datetime | None, now: datetime) -> datetime:
        """When the next run is due (naive local datetimes); <= now means run now."""
        if self.interval is not None:
            return now if last_attempt is None else last_attempt + self.interval
        assert self.at is not None
        slot = now.replace(hour=self.at[0], minute=self.at[1], second=0, microsecond=0)
        if slot > now:
            slot -= timedelta(days=1)  # the most recent slot at or before now
        if last_attempt is None or last_attempt < slot:
            return slot  # a slot was missed (or never ran): due now
        return slot + timedelta(days=1)


def parse_schedule(text: str | None) -> Schedule | None:
    if text is None:
        return None
    cleaned = " ".join(str(text).strip().lower().split())
    if cleaned in ("", "off", "none"):
        return None
    if cleaned == "hourly":
        return Schedule(text, interval=timedelta(hours=1))
    if m := _DAILY.match(cleaned):
        hour, minute = (int(m.group(1)), int(m.group(2))) if m.group(1) else (3, 0)
        if hour > 23 or minute > 59:
            raise ScheduleError(f"{text!r}: {hour:02d}:{minute:02d} is not a time of day")
        return Schedule(text, at=(hour, minute))
    if m := _EVERY.match(cleaned):
        n, unit = int(m.group(1)), m.group(2)
        interval = {"m": timedelta(minutes=n), "min": timedelta(minutes=n),
                    "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]
        if interval < MIN_INTERVAL:
            raise ScheduleError(f"{text!r}: the interval must be at least 5 minutes")
        return Schedule(text, interval=interval)
    raise ScheduleError(
        f"{text!r} is not a schedule; use null, \"hourly\", \"daily HH:MM\" or \"every N(m|h|d)\"")
