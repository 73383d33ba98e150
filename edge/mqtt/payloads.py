"""JSON payloads built from event rows and service state (no paho here: plain data)."""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from edge import timestamps
from edge.db.events import event_fields, event_person

# What the publisher and the state snapshot format their times with (re-exported here).
iso_utc = timestamps.iso_from_db
__all__ = ["event_message", "event_person", "iso_utc", "now_iso", "person_state", "recognition_message",
           "snapshot_url"]


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


def event_message(row: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """The ``events`` topic payload for one events row."""
    event = event_fields(row)
    confidence = event["confidence"]
    return {
        "id": event["id"],
        "type": event["type"],
        "person": event["person"],
        "confidence": None if confidence is None else round(float(confidence), 4),
        "camera": event["camera"],
        "timestamp": event["timestamp"],
        "snapshot": snapshot_url(event["snapshot_path"], data_dir),
    }


def recognition_message(event: dict[str, Any]) -> dict[str, Any]:
    """Home Assistant ``event`` entity payload: ``event_type`` plus the event's fields."""
    kind = "face_recognized" if event.get("person") else "face_unknown"
    return {"event_type": kind, **{k: v for k, v in event.items() if k != "type"}, "type": event.get("type")}


def person_state(event: dict[str, Any]) -> dict[str, Any]:
    return {"camera": event.get("camera"), "timestamp": event.get("timestamp"),
            "confidence": event.get("confidence")}
