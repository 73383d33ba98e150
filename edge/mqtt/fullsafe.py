"""What the MQTT publisher does while the data disk is full.

Events flow on from memory: an event the writer could not store comes on the bus with
``stored`` False and is published at once as :func:`unstored_message` (its UUID as
``id``, ``stored`` false); the writer stores it as published once space returns, so the outbox
never sends it twice. The outbox's own writes (marking rows published, the age/count bound)
need the disk too: :class:`OutboxWrites` keeps the acknowledged ids and retries them, and
logs the full disk once per episode instead of a traceback per step.
"""
from __future__ import annotations

import logging
from typing import Any

from edge.db.outbox import EventOutbox
from edge.telemetry.storage import is_disk_full

log = logging.getLogger(__name__)

MAX_UNMARKED = 100_000


def unstored_message(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``events`` topic payload of an event held in memory (the bus payload of EventSink)."""
    recognised = payload.get("person") is not None
    confidence = payload.get("confidence")
    detector = payload.get("detector_score")
    return {"id": payload.get("uid"), "type": payload.get("type"), "person": payload.get("person"),
            "similarity": confidence if recognised else None,
            "detector_score": round(detector, 4) if isinstance(detector, float) else confidence,
            "confidence": confidence, "camera": payload.get("camera"),
            "timestamp": payload.get("timestamp"), "captured_at": payload.get("timestamp"),
            "snapshot": None, "stored": False}


class OutboxWrites:
    def __init__(self, outbox: EventOutbox) -> None:
        self.outbox = outbox
        self.unmarked: list[int] = []  # acknowledged, not yet marked published
        self._logged = False

    def disk_full(self, exc: Exception, what: str) -> bool:
        """True (logged once per episode) when ``exc`` is a full disk: the caller retries later."""
        if not is_disk_full(exc):
            return False
        if not self._logged:
            self._logged = True
            log.warning("MQTT outbox: cannot %s, the disk is full; retrying while events flow on", what)
        return True

    def apply_bounds(self, max_age_s: float, max_count: int) -> int:
        try:
            return self.outbox.apply_bounds(max_age_s, max_count)
        except Exception as exc:
            if not self.disk_full(exc, "apply the outbox bound"):
                raise
            return 0

    def mark_published(self, ids: list[int]) -> None:
        pending = self.unmarked + ids
        if not pending:
            return
        try:
            self.outbox.mark_published(pending)
        except Exception as exc:
            if not self.disk_full(exc, "mark events published"):
                raise
            self.unmarked = pending[-MAX_UNMARKED:]
            return
        self.unmarked = []
        self._logged = False
