"""The settings schema: every key a device file may set, its type, bounds and defaults.

A declarative table (the shipped ``config/settings.json`` holds the default values);
:mod:`edge.config.validate` walks it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Field:
    types: tuple[type, ...]
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    secret: bool = False
    path: bool = False  # a filesystem path: relative values resolve against the file's dir


@dataclass(frozen=True)
class ListOf:
    item: Any  # a Field or an Item
    nullable: bool = False


@dataclass(frozen=True)
class Item:
    """An object inside a list (a camera, a backup target): required keys plus optional ones."""
    fields: dict[str, Any]
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)


STR = (str,)
INT = (int,)
NUM = (int, float)
BOOL = (bool,)


def _f(types: tuple[type, ...], **kw: Any) -> Field:
    return Field(types, **kw)


ALERT_RULE = {
    "enabled": _f(BOOL),
    "threshold": _f(NUM),
    "duration_s": _f(NUM, minimum=0),
    "hysteresis": _f(NUM, minimum=0),
}

CAMERA = Item(
    fields={
        "name": _f(STR),
        "source": _f((str, int), path=True),
        "enabled": _f(BOOL),
        "loop": _f(BOOL),
        "rate": _f(STR, choices=("native", "max")),
        "ring_size": _f(INT, minimum=2),
        "width": _f(INT, nullable=True, minimum=1),
        "height": _f(INT, nullable=True, minimum=1),
        "stall_timeout_s": _f(NUM, minimum=0.1),
        "backend": _f(STR, choices=("auto", "ffmpeg", "gstreamer", "v4l2")),
        "reconnect_max_s": _f(NUM, minimum=0.1),
        "det_max_side": _f(INT, nullable=True, minimum=32),
        "username": _f(STR, nullable=True),
        "password": _f(STR, nullable=True, secret=True),
        "password_file": _f(STR, nullable=True, path=True),
        "rtsp_transport": _f(STR, choices=("tcp", "udp")),
    },
    required=("name", "source"),
    defaults={
        "enabled": True,
        "loop": False,
        "rate": "native",
        "ring_size": 3,
        "width": None,
        "height": None,
        "stall_timeout_s": 10.0,
        "backend": "auto",
        "reconnect_max_s": 30.0,
        "det_max_side": None,
        "rtsp_transport": "tcp",
    },
)

BACKUP_TARGET = Item(
    fields={
        "name": _f(STR),
        "type": _f(STR, choices=("local", "usb", "smb", "mounted")),
        "enabled": _f(BOOL),
        "path": _f(STR, path=True),
        "subdir": _f(STR, nullable=True),
        "label": _f(STR, nullable=True),
        "uuid": _f(STR, nullable=True),
        "server": _f(STR),
        "share": _f(STR),
        "port": _f(INT, minimum=1),
        "username": _f(STR, nullable=True),
        "password": _f(STR, nullable=True, secret=True),
        "timeout_s": _f(NUM, minimum=1),
        "keep": _f(INT, nullable=True, minimum=1),
    },
    required=("name", "type"),
    defaults={"enabled": True, "keep": None, "timeout_s": 30},
)

SCHEMA: dict[str, Any] = {
    "device": {"id": _f(STR, nullable=True), "name": _f(STR)},
    "paths": {"data_dir": _f(STR, path=True), "models_dir": _f(STR, path=True)},
    "database": {
        "path": _f(STR, nullable=True, path=True),
        "busy_timeout_ms": _f(INT, minimum=0),
        "pre_migrate_keep": _f(INT, minimum=1),
    },
    "cameras": ListOf(CAMERA),
    "pipeline": {
        "providers": ListOf(_f(STR)),
        "intra_op_threads": _f(INT, minimum=0),
        "det_max_side": _f(INT, minimum=32),
        "ring_size": _f(INT, minimum=2),
        "max_faces": _f(INT, minimum=1),
    },
    "recognition": {
        "det_threshold": _f(NUM, minimum=0),
        "match_threshold": _f(NUM),
        "cooldown_s": _f(NUM, minimum=0),
        "reuse_embedding_frames": _f(INT, minimum=0),
    },
    "events": {
        "retention_days": _f(NUM, minimum=0),
        "snapshot_quality": _f(INT, minimum=1),
        "min_free_mb": _f(NUM, minimum=0),
    },
    "mqtt": {
        "enabled": _f(BOOL),
        "host": _f(STR),
        "port": _f(INT, minimum=1),
        "username": _f(STR, nullable=True),
        "password": _f(STR, nullable=True, secret=True),
        "protocol": _f(STR, choices=("3.1.1", "5")),
        "tls": {
            "enabled": _f(BOOL),
            "ca_file": _f(STR, nullable=True, path=True),
            "cert_file": _f(STR, nullable=True, path=True),
            "key_file": _f(STR, nullable=True, path=True),
            "insecure": _f(BOOL),
        },
        "base_topic": _f(STR),
        "discovery_prefix": _f(STR),
        "keepalive_s": _f(INT, minimum=5),
        "outbox_max_age_s": _f(NUM, minimum=0),
        "outbox_max_count": _f(INT, minimum=1),
        "max_inflight": _f(INT, minimum=1),
        "discovery": _f(BOOL),
    },
    "telemetry": {
        "interval_s": _f(NUM, minimum=1),
        "sample_interval_s": _f(NUM, minimum=0.1),
        "history_retention_days": _f(NUM, minimum=0),
    },
    "alerts": {
        "enabled": _f(BOOL),
        "low_fps": ALERT_RULE,
        "high_latency": ALERT_RULE,
        "high_memory": ALERT_RULE,
        "high_temperature": ALERT_RULE,
        "low_disk": ALERT_RULE,
        "camera_offline": ALERT_RULE,
        "backup_failed": ALERT_RULE,
        "backup_overdue": ALERT_RULE,
        "mqtt_disconnected": ALERT_RULE,
    },
    "backup": {
        "schedule": _f(STR, nullable=True),
        "keep": _f(INT, minimum=1),
        "include": ListOf(_f(STR, choices=("db", "faces", "settings"))),
        "encrypt": {
            "enabled": _f(BOOL),
            "passphrase": _f(STR, nullable=True, secret=True),
            "key_file": _f(STR, nullable=True, path=True),
        },
        "targets": ListOf(BACKUP_TARGET),
    },
    "web": {
        "enabled": _f(BOOL),
        "host": _f(STR),
        "port": _f(INT, minimum=0),
        "public_read": _f(BOOL),
        "max_upload_mb": _f(NUM, minimum=1),
    },
}

# Environment variables installers set per device: (variable, dotted key, type).
ENV_OVERRIDES: tuple[tuple[str, str, type], ...] = (
    ("FACEPRO_DATA_DIR", "paths.data_dir", str),
    ("FACEPRO_MODELS_DIR", "paths.models_dir", str),
    ("FACEPRO_DB_PATH", "database.path", str),
    ("FACEPRO_DEVICE_ID", "device.id", str),
    ("FACEPRO_DEVICE_NAME", "device.name", str),
    ("FACEPRO_MQTT_HOST", "mqtt.host", str),
    ("FACEPRO_MQTT_PORT", "mqtt.port", int),
    ("FACEPRO_MQTT_ENABLED", "mqtt.enabled", bool),
    ("FACEPRO_WEB_HOST", "web.host", str),
    ("FACEPRO_WEB_PORT", "web.port", int),
)
