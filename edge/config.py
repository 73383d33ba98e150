"""Settings: shipped defaults, a device file, environment overrides, validated at load.

Order of precedence (last wins): ``config/settings.json`` shipped in the wheel as
``edge.defaults``, the device file (``--config PATH`` or ``FACEPRO_CONFIG``), then the
``FACEPRO_*`` environment variables in :data:`ENV_OVERRIDES`.

Every problem raises :class:`ConfigError` with one line naming the file and the key.
Relative paths in a device file are resolved against that file's directory.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from edge import secrets
from edge.errors import BadInput


class ConfigError(BadInput):
    """A settings problem; the message names the file and the key."""


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

DEFAULTS_NAME = "settings.json"


class Settings:
    """Validated settings: a nested dict plus where it came from.

    ``settings["mqtt.host"]`` reads a dotted key; ``settings.data`` is the whole tree.
    """

    def __init__(self, data: dict[str, Any], source: Path | None = None) -> None:
        self.data = data
        self.source = source

    def __getitem__(self, dotted: str) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            node = node[part]
        return node

    def get(self, dotted: str, default: Any = None) -> Any:
        try:
            return self[dotted]
        except (KeyError, TypeError):
            return default

    @property
    def data_dir(self) -> Path:
        return Path(self["paths.data_dir"])

    @property
    def models_dir(self) -> Path:
        return Path(self["paths.models_dir"])

    @property
    def db_path(self) -> Path:
        return Path(self["database.path"])

    def redacted(self) -> dict[str, Any]:
        """The settings with every secret replaced by ``"***"`` (for display and backups)."""
        return _redact(copy.deepcopy(self.data), SCHEMA)


def _redact(node: Any, spec: Any) -> Any:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key in node:
                node[key] = _redact(node[key], sub)
    elif isinstance(spec, ListOf) and isinstance(node, list):
        return [_redact(item, spec.item) for item in node]
    elif isinstance(spec, Item) and isinstance(node, dict):
        return _redact(node, spec.fields)
    elif isinstance(spec, Field) and spec.secret and node is not None:
        return "***"
    return node


def default_settings_text() -> str:
    return resources.files("edge.defaults").joinpath(DEFAULTS_NAME).read_text(encoding="utf-8")


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Load, merge and validate settings. ``path`` falls back to ``$FACEPRO_CONFIG``."""
    env = dict(os.environ) if env is None else env
    defaults_label = "defaults (edge/defaults/settings.json)"
    data = _parse_json(default_settings_text(), defaults_label)
    _validate(data, SCHEMA, defaults_label, "")

    source: Path | None = None
    if path is None and env.get("FACEPRO_CONFIG"):
        path = env["FACEPRO_CONFIG"]
    if path is not None:
        source = Path(path).expanduser().absolute()
        label = str(source)
        if not source.is_file():
            raise ConfigError(f"{label}: settings file not found")
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{label}: cannot read settings file: {exc.strerror}") from exc
        device = _parse_json(text, label)
        if not isinstance(device, dict):
            raise ConfigError(f"{label}: the top level must be a JSON object")
        _validate(device, SCHEMA, label, "", partial=True)
        _resolve_paths(device, SCHEMA, source.parent)
        data = _merge(data, device)

    for var, dotted, typ in ENV_OVERRIDES:
        if var in env and env[var] != "":
            _set_dotted(data, dotted, _env_value(var, env[var], typ))

    label = str(source) if source else defaults_label
    _apply_item_defaults(data, SCHEMA)
    _validate(data, SCHEMA, label, "")
    _check_semantics(data, label)
    _resolve_paths(data, SCHEMA, Path.cwd())
    if data["database"]["path"] is None:
        data["database"]["path"] = str(Path(data["paths"]["data_dir"]) / "facepro.db")

    settings = Settings(data, source)
    for value in _secret_values(data, SCHEMA):
        secrets.register(value)
    return settings


def _parse_json(text: str, label: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc


def _env_value(var: str, raw: str, typ: type) -> Any:
    if typ is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"environment {var}: expected an integer, got {raw!r}") from None
    if typ is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment {var}: expected true or false, got {raw!r}")
    return raw


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if set(types) == {int, float}:
        return "a number"
    return " or ".join(names.get(t, t.__name__) for t in types)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _check_field(value: Any, spec: Field, label: str, key: str) -> None:
    if value is None:
        if spec.nullable:
            return
        raise ConfigError(f"{label}: key {key}: must not be null (expected {_type_name(spec.types)})")
    ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
    if not ok:
        raise ConfigError(f"{label}: key {key}: expected {_type_name(spec.types)}, got {_json_type(value)}")
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(repr(c) for c in spec.choices)
        raise ConfigError(f"{label}: key {key}: {value!r} is not one of {allowed}")
    if spec.minimum is not None and isinstance(value, (int, float)) and value < spec.minimum:
        raise ConfigError(f"{label}: key {key}: {value!r} is below the minimum {spec.minimum:g}")


def _validate(node: Any, spec: Any, label: str, prefix: str, partial: bool = False) -> None:
    where = prefix or "(top level)"
    if isinstance(spec, dict):
        if not isinstance(node, dict):
            raise ConfigError(f"{label}: key {where}: expected an object, got {_json_type(node)}")
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if key not in spec:
                raise ConfigError(f"{label}: unknown key {dotted}")
            _validate(value, spec[key], label, dotted, partial)
        if not partial:
            for key in spec:
                if key not in node:
                    dotted = f"{prefix}.{key}" if prefix else key
                    raise ConfigError(f"{label}: missing key {dotted}")
    elif isinstance(spec, ListOf):
        if node is None and spec.nullable:
            return
        if not isinstance(node, list):
            raise ConfigError(f"{label}: key {where}: expected a list, got {_json_type(node)}")
        for i, item in enumerate(node):
            _validate(item, spec.item, label, f"{prefix}[{i}]", partial)
        _check_unique_names(node, spec, label, prefix)
    elif isinstance(spec, Item):
        if not isinstance(node, dict):
            raise ConfigError(f"{label}: key {where}: expected an object, got {_json_type(node)}")
        for key, value in node.items():
            if key not in spec.fields:
                raise ConfigError(f"{label}: unknown key {prefix}.{key}")
            _validate(value, spec.fields[key], label, f"{prefix}.{key}", partial)
        for key in spec.required:
            if key not in node:
                raise ConfigError(f"{label}: missing key {prefix}.{key}")
    else:
        _check_field(node, spec, label, where)


def _check_unique_names(items: list[Any], spec: ListOf, label: str, prefix: str) -> None:
    if not isinstance(spec.item, Item) or "name" not in spec.item.fields:
        return
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if name in seen:
            raise ConfigError(f"{label}: key {prefix}[{i}].name: duplicate name {name!r}")
        if isinstance(name, str):
            seen.add(name)


def _check_semantics(data: dict[str, Any], label: str) -> None:
    for i, target in enumerate(data["backup"]["targets"]):
        kind = target["type"]
        needed = ("server", "share") if kind == "smb" else ("path",)
        for key in needed:
            if key not in target:
                raise ConfigError(f"{label}: missing key backup.targets[{i}].{key} (needed by type {kind!r})")
    enc = data["backup"]["encrypt"]
    if enc["enabled"] and not (enc["passphrase"] or enc["key_file"]):
        raise ConfigError(f"{label}: key backup.encrypt: enabled needs a passphrase or a key_file")
    from edge.schedule import ScheduleError, parse_schedule

    try:
        parse_schedule(data["backup"]["schedule"])
    except ScheduleError as exc:
        raise ConfigError(f"{label}: key backup.schedule: {exc}") from None
    for i, target in enumerate(data["backup"]["targets"]):
        if target["type"] == "smb" and "path" in target:
            raise ConfigError(f"{label}: key backup.targets[{i}].path: an smb target takes server, share and "
                              "subdir (the folder inside the share), not path")
        subdir = target.get("subdir")
        if subdir and (subdir.startswith("/") or ".." in subdir.split("/")):
            raise ConfigError(f"{label}: key backup.targets[{i}].subdir: must be a relative path without '..'")
        if subdir and ("{" in subdir.replace("{device_id}", "") or "}" in subdir.replace("{device_id}", "")):
            raise ConfigError(f"{label}: key backup.targets[{i}].subdir: the only placeholder is {{device_id}}")


def _apply_item_defaults(node: Any, spec: Any) -> None:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key in node:
                _apply_item_defaults(node[key], sub)
    elif isinstance(spec, ListOf) and isinstance(node, list) and isinstance(spec.item, Item):
        for item in node:
            if isinstance(item, dict):
                for key, value in spec.item.defaults.items():
                    item.setdefault(key, copy.deepcopy(value))


def _looks_like_path(value: str) -> bool:
    return "://" not in value and "!" not in value and not value.isdigit()


def _resolve_paths(node: Any, spec: Any, base: Path) -> None:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key not in node:
                continue
            if isinstance(sub, Field):
                if sub.path and isinstance(node[key], str) and _looks_like_path(node[key]):
                    node[key] = os.path.normpath((base / Path(node[key]).expanduser()).absolute())
            else:
                _resolve_paths(node[key], sub, base)
    elif isinstance(spec, ListOf) and isinstance(node, list):
        for item in node:
            _resolve_paths(item, spec.item, base)
    elif isinstance(spec, Item) and isinstance(node, dict):
        _resolve_paths(node, spec.fields, base)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _secret_values(node: Any, spec: Any) -> Iterator[str]:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key in node:
                yield from _secret_values(node[key], sub)
    elif isinstance(spec, ListOf) and isinstance(node, list):
        for item in node:
            yield from _secret_values(item, spec.item)
    elif isinstance(spec, Item) and isinstance(node, dict):
        yield from _secret_values(node, spec.fields)
    elif isinstance(spec, Field) and spec.secret and isinstance(node, str) and node:
        yield node
