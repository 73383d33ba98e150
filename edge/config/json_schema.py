"""The settings schema as JSON Schema (draft 2020-12), for editors that validate a device file.

Generated from :data:`edge.config.schema.SCHEMA`, so it says what :mod:`edge.config.validate`
checks per key: types, null, closed sets, ranges, patterns, lengths, unknown keys. A device
file sets only what it changes, so no top-level key is required; a camera or a backup
target needs its required keys. The checks across keys (``backup.schedule`` syntax, what a
target type needs, ``subdir``) are only in ``facepro config check``. ``facepro config schema``
prints it; docs/settings.schema.json is this output.
"""
from __future__ import annotations

from typing import Any

from edge.config.schema import MAX_STRING, SCHEMA, Field, Item, ListOf

SCHEMA_ID = "https://facepro.invalid/schemas/settings.schema.json"
NO_NUL = r"^[^\x00]*$"
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _field(spec: Field) -> dict[str, Any]:
    names = [_JSON_TYPES[t] for t in spec.types]
    if "integer" in names and "number" in names:
        names.remove("integer")
    if spec.nullable:
        names.append("null")
    out: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
    if spec.choices is not None:
        out["enum"] = list(spec.choices) + ([None] if spec.nullable else [])
    if spec.minimum is not None:
        out["minimum"] = spec.minimum
    if spec.maximum is not None:
        out["maximum"] = spec.maximum
    if "string" in names:
        out["maxLength"] = spec.max_length or MAX_STRING
        out["pattern"] = spec.pattern or NO_NUL  # every pattern in the table excludes NUL too
    if spec.secret:
        out["writeOnly"] = True
    return out


def _node(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        return {"type": "object", "additionalProperties": False,
                "properties": {key: _node(sub) for key, sub in spec.items()}}
    if isinstance(spec, ListOf):
        out: dict[str, Any] = {"type": ["array", "null"] if spec.nullable else "array", "items": _node(spec.item)}
        return out
    if isinstance(spec, Item):
        return {"type": "object", "additionalProperties": False, "required": list(spec.required),
                "properties": {key: _node(sub) for key, sub in spec.fields.items()}}
    return _field(spec)


def settings_json_schema() -> dict[str, Any]:
    """The JSON Schema of a device settings file."""
    root = _node(SCHEMA)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "title": "FacePro Edge settings", "description": "A device settings file (facepro --config): "
            "every key is optional and overrides the shipped default.", **root}
