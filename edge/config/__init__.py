"""Settings: shipped defaults, a device file, environment overrides, validated at load.

Order of precedence (last wins): ``config/settings.json`` shipped in the wheel as
``edge.defaults``, the device file (``--config PATH`` or ``FACEPRO_CONFIG``), then the
``FACEPRO_*`` environment variables in :data:`edge.config.schema.ENV_OVERRIDES`.

Every problem raises :class:`ConfigError` with one line naming the file and the key.
Relative paths in a device file are resolved against that file's directory. The schema
is a table in :mod:`edge.config.schema`; :mod:`edge.config.validate` walks it.
"""
from __future__ import annotations

import copy
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from edge import secrets
from edge.config.cameras import check_camera_credentials, mask_camera_urls, register_camera_secrets
from edge.config.errors import ConfigError
from edge.config.schema import ENV_OVERRIDES, SCHEMA
from edge.config.validate import (
    apply_item_defaults,
    check_semantics,
    merge,
    redact,
    resolve_paths,
    secret_values,
    set_dotted,
    validate,
)

__all__ = ["ConfigError", "Settings", "check_document", "default_settings_text", "load_settings"]


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
        return mask_camera_urls(redact(copy.deepcopy(self.data), SCHEMA))


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
    validate(data, SCHEMA, defaults_label, "")

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
        validate(device, SCHEMA, label, "", partial=True)
        resolve_paths(device, SCHEMA, source.parent)
        data = merge(data, device)

    for var, dotted, typ in ENV_OVERRIDES:
        if var in env and env[var] != "":
            set_dotted(data, dotted, _env_value(var, env[var], typ))

    label = str(source) if source else defaults_label
    apply_item_defaults(data, SCHEMA)
    validate(data, SCHEMA, label, "")
    check_semantics(data, label)
    check_camera_credentials(data, label)
    resolve_paths(data, SCHEMA, Path.cwd())
    if data["database"]["path"] is None:
        data["database"]["path"] = str(Path(data["paths"]["data_dir"]) / "facepro.db")

    settings = Settings(data, source)
    for value in secret_values(data, SCHEMA):
        secrets.register(value)
    register_camera_secrets(data)
    return settings


def check_document(text: str, label: str) -> None:
    """Check a settings file's text as :func:`load_settings` would (JSON, every key, the checks
    across keys, merged over the shipped defaults) without reading files, applying the
    environment or registering secrets: for a settings file that arrives in an archive."""
    device = _parse_json(text, label)
    if not isinstance(device, dict):
        raise ConfigError(f"{label}: the top level must be a JSON object")
    validate(device, SCHEMA, label, "", partial=True)
    data = merge(_parse_json(default_settings_text(), "defaults"), device)
    apply_item_defaults(data, SCHEMA)
    validate(data, SCHEMA, label, "")
    check_semantics(data, label)


def _parse_json(text: str, label: str) -> Any:
    try:
        return json.loads(text)  # NaN and Infinity parse; validate() refuses them by key
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:  # an integer of thousands of digits, nesting too deep
        raise ConfigError(f"{label}: invalid JSON: {str(exc).splitlines()[0] or type(exc).__name__}") from None


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
