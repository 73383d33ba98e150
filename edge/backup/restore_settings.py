"""What a restored settings file may bring: masked secrets, endpoints, security switches.

An archive's settings are the archive author's. Two rules keep a restore from handing the
device's secrets or its exposure to them:

* a masked secret (``***``) takes the device's current value only when the endpoint it
  authenticates to is unchanged: same host (or server), port and user. Otherwise it is left
  empty and the restore says so (MQTT, SMB targets, anything with a secret beside a host).
  A camera's endpoint is its ``source`` URL's scheme, host, port and user plus ``username``;
  a password masked inside the URL (``rtsp://user:***@host``) follows the same rule and is
  removed from the URL when it may not follow;
* every security-relevant setting the restore would change is listed
  (:func:`security_changes`); the restore refuses unless those exact changes were accepted
  (``--accept-security-changes``, or the web wizard's confirmation, by :func:`digest`).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from typing import Any
from urllib.parse import unquote

from edge.config.schema import SCHEMA, Field, Item, ListOf
from edge.config.validate import apply_item_defaults, merge
from edge.secrets import MASK, URL_PASSWORD, URL_SCHEME, URL_USER

ENDPOINT_KEYS = ("host", "server", "port", "username")
# (dotted key, what it means) for the settings whose change is shown and must be accepted.
SECURITY_KEYS = (
    ("web.enabled", "the status page"), ("web.host", "the address the status page listens on"),
    ("web.port", "the status page port"), ("web.public_read", "reading the status page without logging in"),
    ("mqtt.enabled", "MQTT"), ("mqtt.host", "the MQTT broker"), ("mqtt.port", "the MQTT port"),
    ("mqtt.username", "the MQTT user"), ("mqtt.tls.enabled", "TLS to the broker"),
    ("mqtt.tls.insecure", "skipping the broker's certificate check"), ("mqtt.tls.ca_file", "the broker's CA"),
    ("mqtt.tls.cert_file", "the client certificate shown to the broker"),
    ("mqtt.tls.key_file", "the client key shown to the broker"),
    ("web.secure_cookies", "the Secure flag on the session cookie"),
    ("backup.encrypt.enabled", "backup encryption"),
)
TARGET_KEYS = ("type", "path", "subdir", "server", "share", "port", "username")
# scheme://[user[:password]@]host[:port] anywhere in a camera source (a URL or a pipeline
# that names one), with edge.secrets' user info rule (a password may hold a raw '@' or '/').
_URL = re.compile(rf"(?i)\b({URL_SCHEME})://(?:({URL_USER})(?::({URL_PASSWORD}))?@)?"
                  r"(\[[^\]/\s]*\]|[^/@\s:'\"?#]*)(?::(\d+))?")


def _get(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def source_hosts(source: Any) -> tuple[tuple[str, str, str], ...]:
    """(scheme, host, port) of each URL in a camera ``source``; () for a device, file or number."""
    if not isinstance(source, str):
        return ()
    return tuple((m.group(1).lower(), m.group(4).lower(), m.group(5) or "") for m in _URL.finditer(source))


def camera_endpoint(camera: Any) -> tuple[Any, ...] | None:
    """Where a camera's password goes: each URL's scheme, host, port and user, and the
    ``username`` setting; None without a URL (no password is sent anywhere)."""
    if not isinstance(camera, dict) or not source_hosts(camera.get("source")):
        return None
    users = tuple(unquote(m.group(2) or "") for m in _URL.finditer(str(camera["source"])))
    return source_hosts(camera["source"]), users, camera.get("username")


def _url_passwords(source: str, current: Any, same_endpoint: bool) -> tuple[str, bool]:
    """``source`` with each masked URL password replaced by the device's password for the
    same URL (same endpoint only) or removed; and whether a device password was withheld."""
    ours = [m.group(3) for m in _URL.finditer(current)] if isinstance(current, str) else []
    withheld = False

    def put(index: int, match: re.Match[str]) -> str:
        nonlocal withheld
        if match.group(3) != MASK:
            return match.group(0)
        mine = ours[index] if index < len(ours) and ours[index] not in (None, MASK) else None
        if mine is not None and not same_endpoint:
            withheld, mine = True, None
        userinfo = (match.group(2) or "") + (f":{mine}" if mine is not None else "")
        port = f":{match.group(5)}" if match.group(5) else ""
        return f"{match.group(1)}://{userinfo + '@' if userinfo else ''}{match.group(4)}{port}"

    index = itertools.count()  # the n-th URL of the backup's source pairs with the device's n-th
    return _URL.sub(lambda match: put(next(index), match), source), withheld


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
    if "source" in fields:  # a camera
        endpoint = camera_endpoint(backup_eff)
        same_endpoint = same_endpoint and endpoint is not None and endpoint == camera_endpoint(current_eff)
    for key, value in backup.items():
        sub = fields.get(key)
        dotted = f"{where}.{key}" if where else key
        if key == "source" and "source" in fields and isinstance(value, str):
            out[key], withheld = _url_passwords(value, cur.get(key), same_endpoint)
            if withheld:
                cleared.append(f"{dotted} (its password)")
        elif isinstance(sub, Field) and sub.secret and value == MASK:
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
    return lines + _camera_changes(current.get("cameras") or [], new.get("cameras") or [])


def _shown(hosts: tuple[tuple[str, str, str], ...]) -> str:
    return ", ".join(f"{scheme}://{host}" + (f":{port}" if port else "") for scheme, host, port in hosts) or "none"


def _camera_changes(current: list[Any], new: list[Any]) -> list[str]:
    """The hosts a camera's credentials go to, where the restore changes them (never the URL's
    path or query, which may carry a token), and any change of its password file."""
    old_cameras = {c.get("name"): c for c in current if isinstance(c, dict)}
    new_cameras = {c.get("name"): c for c in new if isinstance(c, dict)}
    lines = []
    for name in sorted(set(old_cameras) | set(new_cameras), key=str):
        before, after = old_cameras.get(name) or {}, new_cameras.get(name) or {}
        hosts_before, hosts_after = source_hosts(before.get("source")), source_hosts(after.get("source"))
        if hosts_before != hosts_after:
            lines.append(f"cameras {name!r}.source (the camera host its user and password go to): "
                         f"{_shown(hosts_before)} -> {_shown(hosts_after)}")
        if (hosts_before or hosts_after) and before.get("password_file") != after.get("password_file"):
            lines.append(f"cameras {name!r}.password_file (the file its password is read from): "
                         f"{json.dumps(before.get('password_file'))} -> {json.dumps(after.get('password_file'))}")
    return lines


def digest(changes: list[str]) -> str:
    """What a confirmation names: the exact list of changes shown."""
    return hashlib.sha256("\n".join(changes).encode()).hexdigest()[:16]
