"""JSON payloads built from event rows and service state (no paho here: plain data)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

UNKNOWN_LABELS = {"", "unknown", "none", "null"}


def iso_utc(value: Any) -> str | None:
    """A DB timestamp (UTC ``YYYY-MM-DD HH:MM:SS[.fff]``, ISO, or epoch seconds) as ISO 8601 'Z'."""
    if value is None:
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
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def now_iso() -> str:
    return iso_utc(datetime.now(timezone.utc).timestamp())  # type: ignore[return-value]


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


def event_person(row: dict[str, Any]) -> str | None:
    label = row.get("object_label")
    if label is None or "unknown" in str(row.get("event_type") or "").lower():
        return None
    if str(label).strip().lower() in UNKNOWN_LABELS:
        return None
    return str(label)


def event_message(row: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """The ``events`` topic payload for one events row."""
    confidence = row.get("confidence")
    return {
        "id": int(row["id"]),
        "type": row.get("event_type"),
        "person": event_person(row),
        "confidence": None if confidence is None else round(float(confidence), 4),
        "camera": row.get("camera_name"),
        "timestamp": iso_utc(row.get("created_at")),
        "snapshot": snapshot_url(row.get("snapshot_path"), data_dir),
    }


def recognition_message(event: dict[str, Any]) -> dict[str, Any]:
    """Home Assistant ``event`` entity payload: ``event_type`` plus the event's fields."""
    kind = "face_recognized" if event.get("person") else "face_unknown"
    return {"event_type": kind, **{k: v for k, v in event.items() if k != "type"}, "type": event.get("type")}


def person_state(event: dict[str, Any]) -> dict[str, Any]:
    return {"camera": event.get("camera"), "timestamp": event.get("timestamp"),
            "confidence": event.get("confidence")}
