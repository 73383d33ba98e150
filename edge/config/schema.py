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
    minimum: float | None = None  # numbers (always finite: NaN and Infinity are refused)
    maximum: float | None = None
    secret: bool = False
    path: bool = False  # a filesystem path: relative values resolve against the file's dir
    pattern: str | None = None  # strings: a regular expression the whole value matches
    max_length: int | None = None  # strings; every string has a bound (MAX_STRING by default)


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


MAX_STRING = 4096  # a string without its own max_length (paths, free text)
# Identifiers: what each one ends up in (a file name, a topic, a form field) decides the pattern.
ID = r"^[A-Za-z0-9_-]{1,64}$"  # device.id: a directory and topic level (edge.device_id.VALID_ID)
NAME = r"^[^\x00-\x1f\x7f]{1,64}$"  # a display name: one line, no control characters
TARGET_NAME = r"^[A-Za-z0-9_.-]{1,64}$"  # a backup target: a form value "target/archive", a log key
HOST = r"^[A-Za-z0-9_.:\[\]-]{1,253}$"  # a host name, an IPv4 or IPv6 address
TOPIC = r"^(?!\$)/?[^+#/\x00-\x1f\x7f]+(/[^+#/\x00-\x1f\x7f]+)*/?$"  # topic levels, no wildcards, no $
FS_LABEL = r"^[^/\x00-\x1f\x7f]{1,64}$"
FS_UUID = r"^[A-Za-z0-9-]{1,64}$"
SHARE = r"^[^/\\\x00-\x1f\x7f]{1,80}$"
USER = r"^[^\x00-\x1f\x7f]{1,256}$"
PUBLIC_URL = r"^https?://[^\s\x00-\x1f\x7f]+$"  # where the status page is reached from outside
PATTERN_HINTS = {
    ID: "letters, digits, '_' and '-', 1 to 64 characters",
    NAME: "1 to 64 characters on one line",
    TARGET_NAME: "letters, digits, '_', '.' and '-', 1 to 64 characters",
    HOST: "a host name or an IP address",
    TOPIC: "MQTT topic levels separated by '/', without '+', '#' or a leading '$'",
    FS_LABEL: "a filesystem label without '/'",
    FS_UUID: "a filesystem UUID (letters, digits and '-')",
    SHARE: "a share name without '/' or '\\'",
    USER: "1 to 256 characters on one line",
    PUBLIC_URL: "an http:// or https:// address",
}
DAY = 86400.0
YEAR = 365 * DAY
# Every execution provider name ONNX Runtime defines (onnxruntime.get_all_providers()).
ORT_PROVIDERS = (
    "NvTensorRTRTXExecutionProvider", "TensorrtExecutionProvider", "CUDAExecutionProvider",
    "MIGraphXExecutionProvider", "ROCMExecutionProvider", "OpenVINOExecutionProvider",
    "DnnlExecutionProvider", "VitisAIExecutionProvider", "QNNExecutionProvider", "NnapiExecutionProvider",
    "VSINPUExecutionProvider", "JsExecutionProvider", "CoreMLExecutionProvider", "ArmNNExecutionProvider",
    "ACLExecutionProvider", "DmlExecutionProvider", "RknpuExecutionProvider", "WebNNExecutionProvider",
    "WebGpuExecutionProvider", "XnnpackExecutionProvider", "CANNExecutionProvider", "AzureExecutionProvider",
    "CPUExecutionProvider", "TvmExecutionProvider", "SNPEExecutionProvider",
)


ALERT_RULE = {
    "enabled": _f(BOOL),
    "threshold": _f(NUM, minimum=0, maximum=1e9),
    "duration_s": _f(NUM, minimum=0, maximum=7 * DAY),
    "hysteresis": _f(NUM, minimum=0, maximum=1e9),
}

CAMERA = Item(
    fields={
        "name": _f(STR, pattern=NAME),
        "source": _f((str, int), path=True, minimum=0, maximum=255),  # a path, URL, pipeline or /dev/videoN
        "enabled": _f(BOOL),
        "loop": _f(BOOL),
        "rate": _f(STR, choices=("native", "max")),
        "ring_size": _f(INT, minimum=2, maximum=64),
        "width": _f(INT, nullable=True, minimum=1, maximum=16384),
        "height": _f(INT, nullable=True, minimum=1, maximum=16384),
        "stall_timeout_s": _f(NUM, minimum=0.1, maximum=3600),
        "backend": _f(STR, choices=("auto", "ffmpeg", "gstreamer", "v4l2")),
        "reconnect_max_s": _f(NUM, minimum=0.1, maximum=3600),
        "det_max_side": _f(INT, nullable=True, minimum=32, maximum=4096),
        "area": _f(STR, nullable=True, pattern=NAME),
        "detect_fps": _f(NUM, nullable=True, minimum=0, maximum=120),
        "motion": _f(BOOL, nullable=True),
        "motion_masks": ListOf(ListOf(ListOf(_f(NUM, minimum=0, maximum=1)))),
        "username": _f(STR, nullable=True, pattern=USER),
        "password": _f(STR, nullable=True, secret=True, max_length=1024),
        "password_file": _f(STR, nullable=True, path=True),
        "rtsp_transport": _f(STR, choices=("tcp", "udp")),
        "decoder": _f(STR, choices=("auto", "nvidia", "vaapi", "software")),
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
        "reconnect_max_s": 2.5,
        "det_max_side": None,
        "area": None,
        "detect_fps": None,
        "motion": None,
        "motion_masks": [],
        "rtsp_transport": "tcp",
        "decoder": "auto",
    },
)

BACKUP_TARGET = Item(
    fields={
        "name": _f(STR, pattern=TARGET_NAME),
        "type": _f(STR, choices=("local", "usb", "smb", "mounted")),
        "enabled": _f(BOOL),
        "path": _f(STR, path=True),
        "subdir": _f(STR, nullable=True, max_length=255),
        "label": _f(STR, nullable=True, pattern=FS_LABEL),
        "uuid": _f(STR, nullable=True, pattern=FS_UUID),
        "server": _f(STR, pattern=HOST),
        "share": _f(STR, pattern=SHARE),
        "port": _f(INT, minimum=1, maximum=65535),
        "username": _f(STR, nullable=True, pattern=USER),
        "password": _f(STR, nullable=True, secret=True, max_length=1024),
        "timeout_s": _f(NUM, minimum=1, maximum=600),
        "keep": _f(INT, nullable=True, minimum=1, maximum=1000),
    },
    required=("name", "type"),
    defaults={"enabled": True, "keep": None, "timeout_s": 30},
)

SCHEMA: dict[str, Any] = {
    "device": {"id": _f(STR, nullable=True, pattern=ID), "name": _f(STR, pattern=NAME)},
    "paths": {"data_dir": _f(STR, path=True), "models_dir": _f(STR, path=True)},
    "database": {
        "path": _f(STR, nullable=True, path=True),
        "busy_timeout_ms": _f(INT, minimum=0, maximum=600_000),
        "pre_migrate_keep": _f(INT, minimum=1, maximum=100),
    },
    "cameras": ListOf(CAMERA),
    "pipeline": {
        "providers": ListOf(_f(STR, choices=ORT_PROVIDERS)),
        "intra_op_threads": _f(INT, minimum=0, maximum=256),
        "det_max_side": _f(INT, minimum=32, maximum=4096),
        "ring_size": _f(INT, minimum=2, maximum=64),
        "max_faces": _f(INT, minimum=1, maximum=256),
        "detect_fps": _f(NUM, minimum=0, maximum=120),
        "motion": {
            "enabled": _f(BOOL),
            "keepalive_s": _f(NUM, minimum=0.1, maximum=3600),
            "idle_check_s": _f(NUM, minimum=0.1, maximum=3600),
            "hold_s": _f(NUM, minimum=0, maximum=60),
            "width": _f(INT, minimum=16, maximum=1920),
            "threshold": _f(INT, minimum=1, maximum=255),
            "min_area": _f(NUM, minimum=0, maximum=1),
            "alpha": _f(NUM, minimum=0, maximum=1),
            "warmup_frames": _f(INT, minimum=0, maximum=1000),
            "global_fraction": _f(NUM, minimum=0, maximum=1),
            "region_side": _f(INT, minimum=0, maximum=4096),
        },
    },
    "recognition": {
        "det_threshold": _f(NUM, minimum=0, maximum=1),
        "match_threshold": _f(NUM, minimum=0, maximum=1),  # cosine similarity of unit embeddings
        "cooldown_s": _f(NUM, minimum=0, maximum=DAY),
        "reuse_embedding_frames": _f(INT, minimum=0, maximum=1000),
        "presence_timeout_s": _f(NUM, minimum=1, maximum=DAY),
    },
    "events": {
        "retention_days": _f(NUM, minimum=0, maximum=36500),
        "snapshot_quality": _f(INT, minimum=1, maximum=100),  # JPEG quality
        "min_free_mb": _f(NUM, minimum=0, maximum=1e7),
    },
    "mqtt": {
        "enabled": _f(BOOL),
        "host": _f(STR, pattern=HOST),
        "port": _f(INT, minimum=1, maximum=65535),
        "username": _f(STR, nullable=True, pattern=USER),
        "password": _f(STR, nullable=True, secret=True, max_length=1024),
        "protocol": _f(STR, choices=("3.1.1", "5")),
        "tls": {
            "enabled": _f(BOOL),
            "ca_file": _f(STR, nullable=True, path=True),
            "cert_file": _f(STR, nullable=True, path=True),
            "key_file": _f(STR, nullable=True, path=True),
            "insecure": _f(BOOL),
        },
        "base_topic": _f(STR, pattern=TOPIC, max_length=128),
        "discovery_prefix": _f(STR, pattern=TOPIC, max_length=128),
        "keepalive_s": _f(INT, minimum=5, maximum=65535),
        "outbox_max_age_s": _f(NUM, minimum=0, maximum=YEAR),
        "outbox_max_count": _f(INT, minimum=1, maximum=10_000_000),
        "max_inflight": _f(INT, minimum=1, maximum=1000),
        "discovery": _f(BOOL),
        "event_freshness_s": _f(NUM, minimum=0, maximum=DAY),
        "command_cooldown_s": _f(NUM, minimum=0, maximum=3600),
        "image_max_side": _f(INT, minimum=64, maximum=4096),
    },
    "telemetry": {
        "interval_s": _f(NUM, minimum=1, maximum=DAY),
        "sample_interval_s": _f(NUM, minimum=0.1, maximum=3600),
        "history_retention_days": _f(NUM, minimum=0, maximum=3650),
    },
    "alerts": {
        "enabled": _f(BOOL),
        "low_fps": ALERT_RULE,
        "high_latency": ALERT_RULE,
        "high_memory": ALERT_RULE,
        "high_temperature": ALERT_RULE,
        "low_disk": ALERT_RULE,
        "disk_full": ALERT_RULE,
        "camera_offline": ALERT_RULE,
        "backup_failed": ALERT_RULE,
        "backup_overdue": ALERT_RULE,
        "mqtt_disconnected": ALERT_RULE,
    },
    "backup": {
        "schedule": _f(STR, nullable=True, max_length=64),
        "keep": _f(INT, minimum=1, maximum=1000),
        "include": ListOf(_f(STR, choices=("db", "faces", "settings"))),
        "encrypt": {
            "enabled": _f(BOOL),
            "passphrase": _f(STR, nullable=True, secret=True, max_length=1024),
            "key_file": _f(STR, nullable=True, path=True),
        },
        "targets": ListOf(BACKUP_TARGET),
    },
    "web": {
        "enabled": _f(BOOL),
        "host": _f(STR, pattern=HOST),
        "port": _f(INT, minimum=0, maximum=65535),  # 0: any free port (tests)
        "public_read": _f(BOOL),
        "max_upload_mb": _f(NUM, minimum=1, maximum=4096),
        "public_url": _f(STR, nullable=True, pattern=PUBLIC_URL, max_length=512),
        "secure_cookies": _f(BOOL),
        "session_max_age_s": _f(NUM, minimum=60, maximum=30 * DAY),
        "session_idle_s": _f(NUM, minimum=60, maximum=30 * DAY),
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
