"""What a restored settings file may bring: masked secrets, endpoints, security switches.

An archive's settings are the archive author's. Two rules keep a restore from handing the
device's secrets or its exposure to them:

* a masked secret (``***``) takes the device's current value only when the endpoint it
  authenticates to is unchanged: same host (or server), port and user. Otherwise it is left
  empty and the restore says so (MQTT, SMB targets, anything with a secret beside a host);
* every security-relevant setting the restore would change is listed
  (:func:`security_changes`); the restore refuses unless those exact changes were accepted
  (``--accept-security-changes``, or the web wizard's confirmation, by :func:`digest`).
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from edge.config.schema import SCHEMA, Field, Item, ListOf
from edge.config.validate import apply_item_defaults, merge

MASK = "***"
ENDPOINT_KEYS = ("host", "server", "port", "username")
# (dotted key, what it means) for the settings whose change is shown and must be accepted.
SECURITY_KEYS = (
    ("web.enabled", "the status page"), ("web.host", "the address the status page listens on"),
    ("web.port", "the status page port"), ("web.public_read", "reading the status page without logging in"),
    ("mqtt.enabled", "MQTT"), ("mqtt.host", "the MQTT broker"), ("mqtt.port", "the MQTT port"),
    ("mqtt.username", "the MQTT user"), ("mqtt.tls.enabled", "TLS to the broker"),
    ("mqtt.tls.insecure", "skipping the broker's certificate check"), ("mqtt.tls.ca_file", "the broker's CA"),
    ("backup.encrypt.enabled", "backup encryption"),
)
TARGET_KEYS = ("type", "path", "subdir", "server", "share", "port", "username")


def _get(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def merge_masked(backup: Any, current: Any, spec: Any, where: str, cleared: list[str],
                 backup_eff: Any = None, current_eff: Any = None) -> Any:
    """The backup's settings with each masked secret replaced by the device's current value
    where the endpoint is unchanged, or None (its dotted key appended to ``cleared``)."""
    if isinstance(spec, ListOf):
        if not isinstance(backup, list):
            return backup
        items: list[Any] = current if isinstance(current, list) else []
        named = {c.get("name"): c for c in items if isinstance(c, dict)}
        eff_named = {c.get("name"): c for c in (current_eff or []) if isinstance(c, dict)}
        merged: list[Any] = []
        for i, item in enumerate(backup):
            name = item.get("name") if isinstance(item, dict) else None
            eff_item = (backup_eff or [])[i] if isinstance(backup_eff, list) and i < len(backup_eff) else item
            merged.append(merge_masked(item, named.get(name), spec.item, f"{where}[{i}]", cleared,
                                       eff_item, eff_named.get(name)))
        return merged
    fields = spec.fields if isinstance(spec, Item) else spec if isinstance(spec, dict) else None
    if fields is None or not isinstance(backup, dict):
        return backup
    cur: dict[str, Any] = current if isinstance(current, dict) else {}
    out: dict[str, Any] = {}
    same_endpoint = all(_get(backup_eff, k) == _get(current_eff, k) for k in ENDPOINT_KEYS if k in fields)
    for key, value in backup.items():
        sub = fields.get(key)
        dotted = f"{where}.{key}" if where else key
        if isinstance(sub, Field) and sub.secret and value == MASK:
            kept = cur.get(key) if cur.get(key) != MASK else None
            if kept is not None and not same_endpoint:
                kept = None
                cleared.append(dotted)
            out[key] = kept
        elif sub is None or isinstance(sub, Field):
            out[key] = value
        else:
            out[key] = merge_masked(value, cur.get(key), sub, dotted, cleared,
                                    _get(backup_eff, key) if isinstance(backup_eff, dict) else None,
                                    _get(current_eff, key) if isinstance(current_eff, dict) else None)
    return out


def prepare(backup: dict[str, Any], current_file: dict[str, Any], current_eff: dict[str, Any],
            defaults: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the settings to write, the secret keys left empty because their endpoint changed)."""
    backup_eff = merge(defaults, backup)
    apply_item_defaults(backup_eff, SCHEMA)
    cleared: list[str] = []
    merged = merge_masked(copy.deepcopy(backup), current_file, SCHEMA, "", cleared, backup_eff, current_eff)
    return merged, cleared


def security_changes(current: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """One line per security-relevant setting the restore changes (no secret is shown)."""
    lines = []
    for key, meaning in SECURITY_KEYS:
        before, after = _get(current, key), _get(new, key)
        if before != after:
            lines.append(f"{key} ({meaning}): {json.dumps(before)} -> {json.dumps(after)}")
    old_targets = {t["name"]: t for t in current["backup"]["targets"]}
    new_targets = {t["name"]: t for t in new["backup"]["targets"]}
    for name in sorted(set(old_targets) | set(new_targets)):
        before, after = old_targets.get(name), new_targets.get(name)
        if before is None or after is None:
            spec = after or before or {}
            where = spec.get("server") or spec.get("path")
            lines.append(f"backup.targets {name!r} ({spec.get('type')} {where}): "
                         f"{'added' if before is None else 'removed'}")
            continue
        for key in TARGET_KEYS:
            if before.get(key) != after.get(key):
                lines.append(f"backup.targets {name!r}.{key}: {json.dumps(before.get(key))} -> "
                             f"{json.dumps(after.get(key))}")
    return lines


def digest(changes: list[str]) -> str:
    """What a confirmation names: the exact list of changes shown."""
    return hashlib.sha256("\n".join(changes).encode()).hexdigest()[:16]
