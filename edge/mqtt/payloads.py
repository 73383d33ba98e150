"""JSON payloads built from event rows and service state (no paho here: plain data)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from edge import timestamps
from edge.db.events import event_fields, event_person

# What the publisher and the state snapshot format their times with (re-exported here).
iso_utc = timestamps.iso_from_db
__all__ = ["camera_last", "delivery_fields", "epoch", "event_age_s", "event_message", "event_person", "is_late",
           "iso_utc", "now_iso", "person_state", "recognition_message", "snapshot_url"]


def now_iso() -> str:
    return timestamps.now_iso(ms=True)


def snapshot_url(snapshot_path: str | None, data_dir: Path) -> str | None:
    """The status page path of a snapshot: ``/snapshots/<path relative to <data_dir>/snapshots>``."""
    if not snapshot_path:
        return None
    path = Path(snapshot_path)
    if path.is_absolute():
        for root in (data_dir / "snapshots", data_dir):
            try:
                path = path.relative_to(root)
                break
            except ValueError:
                continue
        else:
            path = Path(path.name)
    parts = PurePosixPath(path.as_posix()).parts
    if parts and parts[0] == "snapshots":
        parts = parts[1:]
    parts = tuple(p for p in parts if p not in ("..", ".", "/"))
    return "/snapshots/" + "/".join(parts) if parts else None


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def event_message(row: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """The ``events`` topic payload for one events row.

    ``id`` is the event's UUID (unique across restores and devices; the row id stays
    internal). ``similarity`` is the gallery cosine similarity of a recognised face,
    ``detector_score`` the face detector's score; ``confidence`` is the deprecated alias
    kept for one release (similarity when recognised, detector score when unknown).
    ``timestamp`` and ``captured_at`` are the capture time. :func:`delivery_fields` adds
    when it was published and whether that was late.
    """
    event = event_fields(row)
    confidence = _round(event["confidence"])
    recognised = event["person"] is not None
    detector = _round(event.get("detector_score"))
    if detector is None and not recognised:
        detector = confidence
    return {
        "id": event.get("uid") or str(event["id"]),
        "type": event["type"],
        "person": event["person"],
        "similarity": confidence if recognised else None,
        "detector_score": detector,
        "confidence": confidence,
        "camera": event["camera"],
        "timestamp": event["timestamp"],
        "captured_at": event["timestamp"],
        "snapshot": snapshot_url(event["snapshot_path"], data_dir),
    }


def epoch(iso: Any) -> float | None:
    """An ISO 8601 time (``...Z``) as epoch seconds; None when absent or not a time."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def event_age_s(event: dict[str, Any], now: float | None = None) -> float | None:
    captured = epoch(event.get("captured_at"))
    if captured is None:
        return None
    return max(0.0, (time.time() if now is None else now) - captured)


def delivery_fields(event: dict[str, Any], fresh_s: float, now: float | None = None) -> dict[str, Any]:
    """``event`` plus ``published_at``, ``age_s`` and ``delayed`` (older than ``fresh_s``)."""
    now = time.time() if now is None else now
    age = event_age_s(event, now)
    return {**event, "published_at": timestamps.iso_utc(now, ms=True),
            "age_s": None if age is None else round(age, 1),
            "delayed": age is not None and age > fresh_s}


def is_late(event: dict[str, Any], fresh_s: float, now: float | None = None) -> bool:
    """Whether ``event`` is older than ``fresh_s`` now (or was marked ``delayed`` when sent)."""
    age = event_age_s(event, now)
    return bool(event.get("delayed")) or (age is not None and age > fresh_s)


def recognition_message(event: dict[str, Any]) -> dict[str, Any]:
    """Home Assistant ``event`` entity payload: ``event_type`` plus the event's fields."""
    kind = "face_recognized" if event.get("person") else "face_unknown"
    return {"event_type": kind, **{k: v for k, v in event.items() if k != "type"}, "type": event.get("type")}


def person_state(event: dict[str, Any], present: bool) -> dict[str, Any]:
    """The retained ``person/<name>`` state: presence, last seen, where, how sure."""
    return {"name": event.get("person"), "present": "ON" if present else "OFF",
            "last_seen": event.get("captured_at") or event.get("timestamp"), "camera": event.get("camera"),
            "similarity": event.get("similarity"), "event_id": event.get("id"),
            "timestamp": event.get("timestamp"), "confidence": event.get("confidence")}


def camera_last(event: dict[str, Any]) -> dict[str, Any]:
    """The retained ``camera/<name>/last`` state (the "Last recognised" sensor and its attributes)."""
    return {"person": event.get("person") or "unknown", "camera": event.get("camera"),
            "similarity": event.get("similarity"), "detector_score": event.get("detector_score"),
            "event_id": event.get("id"), "time": event.get("captured_at") or event.get("timestamp")}
