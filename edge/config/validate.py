"""Walks :data:`edge.config.schema.SCHEMA` over a settings tree: type and bound checks, the
checks across keys, item defaults, path resolution, merging and secret discovery."""
from __future__ import annotations

import copy
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge.config.cameras import check_cameras
from edge.config.errors import ConfigError
from edge.config.schema import MAX_STRING, PATTERN_HINTS, Field, Item, ListOf
from edge.schedule import ScheduleError, parse_schedule


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
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{label}: key {key}: {value!r} is not a finite number")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            raise ConfigError(f"{label}: key {key}: {value!r} is below the minimum {spec.minimum:g}")
        if spec.maximum is not None and value > spec.maximum:
            raise ConfigError(f"{label}: key {key}: {value!r} is above the maximum {spec.maximum:g}")
    if isinstance(value, str):
        limit = spec.max_length or MAX_STRING
        if len(value) > limit:
            raise ConfigError(f"{label}: key {key}: longer than {limit} characters")
        if "\x00" in value:
            raise ConfigError(f"{label}: key {key}: contains a NUL character")
        if spec.pattern is not None and not re.match(spec.pattern, value):
            shown = "***" if spec.secret else repr(value)
            hint = PATTERN_HINTS.get(spec.pattern, f"the pattern {spec.pattern}")
            raise ConfigError(f"{label}: key {key}: {shown} is not valid (expected {hint})")


def validate(node: Any, spec: Any, label: str, prefix: str, partial: bool = False) -> None:
    where = prefix or "(top level)"
    if isinstance(spec, dict):
        if not isinstance(node, dict):
            raise ConfigError(f"{label}: key {where}: expected an object, got {_json_type(node)}")
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if key not in spec:
                raise ConfigError(f"{label}: unknown key {dotted}")
            validate(value, spec[key], label, dotted, partial)
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
            validate(item, spec.item, label, f"{prefix}[{i}]", partial)
        _check_unique_names(node, spec, label, prefix)
    elif isinstance(spec, Item):
        if not isinstance(node, dict):
            raise ConfigError(f"{label}: key {where}: expected an object, got {_json_type(node)}")
        for key, value in node.items():
            if key not in spec.fields:
                raise ConfigError(f"{label}: unknown key {prefix}.{key}")
            validate(value, spec.fields[key], label, f"{prefix}.{key}", partial)
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


def check_semantics(data: dict[str, Any], label: str) -> None:
    check_cameras(data, label)
    for i, target in enumerate(data["backup"]["targets"]):
        kind = target["type"]
        needed = ("server", "share") if kind == "smb" else ("path",)
        for key in needed:
            if key not in target:
                raise ConfigError(f"{label}: missing key backup.targets[{i}].{key} (needed by type {kind!r})")
    enc = data["backup"]["encrypt"]
    if enc["enabled"] and not (enc["passphrase"] or enc["key_file"]):
        raise ConfigError(f"{label}: key backup.encrypt: enabled needs a passphrase or a key_file")
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


def apply_item_defaults(node: Any, spec: Any) -> None:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key in node:
                apply_item_defaults(node[key], sub)
    elif isinstance(spec, ListOf) and isinstance(node, list) and isinstance(spec.item, Item):
        for item in node:
            if isinstance(item, dict):
                for key, value in spec.item.defaults.items():
                    item.setdefault(key, copy.deepcopy(value))


def _looks_like_path(value: str) -> bool:
    return "://" not in value and "!" not in value and not value.isdigit()


def resolve_paths(node: Any, spec: Any, base: Path) -> None:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key not in node:
                continue
            if isinstance(sub, Field):
                if sub.path and isinstance(node[key], str) and _looks_like_path(node[key]):
                    node[key] = os.path.normpath((base / Path(node[key]).expanduser()).absolute())
            else:
                resolve_paths(node[key], sub, base)
    elif isinstance(spec, ListOf) and isinstance(node, list):
        for item in node:
            resolve_paths(item, spec.item, base)
    elif isinstance(spec, Item) and isinstance(node, dict):
        resolve_paths(node, spec.fields, base)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def secret_values(node: Any, spec: Any) -> Iterator[str]:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key in node:
                yield from secret_values(node[key], sub)
    elif isinstance(spec, ListOf) and isinstance(node, list):
        for item in node:
            yield from secret_values(item, spec.item)
    elif isinstance(spec, Item) and isinstance(node, dict):
        yield from secret_values(node, spec.fields)
    elif isinstance(spec, Field) and spec.secret and isinstance(node, str) and node:
        yield node


def redact(node: Any, spec: Any) -> Any:
    if isinstance(spec, dict) and isinstance(node, dict):
        for key, sub in spec.items():
            if key in node:
                node[key] = redact(node[key], sub)
    elif isinstance(spec, ListOf) and isinstance(node, list):
        return [redact(item, spec.item) for item in node]
    elif isinstance(spec, Item) and isinstance(node, dict):
        return redact(node, spec.fields)
    elif isinstance(spec, Field) and spec.secret and node is not None:
        return "***"
    return node
