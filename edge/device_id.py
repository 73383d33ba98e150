"""The device's identity: stable per device, never baked into a shared image.

Order: ``device.id`` from settings (if set), else ``<data_dir>/device_id`` (created on
first boot), derived from ``/etc/machine-id`` hashed with an application key (the raw
machine id is never exposed), or random when there is no machine id.
"""
from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

ID_FILE = "device_id"
VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
APP_KEY = b"facepro-edge-device-id-v1"


def derive_from_machine_id(machine_id_path: Path = Path("/etc/machine-id")) -> str | None:
    try:
        raw = machine_id_path.read_text().strip()
    except OSError:
        return None
    if not re.fullmatch(r"[0-9a-f]{32}", raw):
        return None  # empty or 'uninitialized' on a freshly flashed image
    return "facepro-" + hashlib.sha256(APP_KEY + raw.encode()).hexdigest()[:12]


def peek_device_id(configured: str | None, data_dir: Path) -> str | None:
    """The device id if it is configured or already stored; never creates it (doctor)."""
    if configured:
        return configured if VALID_ID.match(configured) else None
    try:
        stored = (data_dir / ID_FILE).read_text().strip()
    except OSError:
        return None
    return stored if VALID_ID.match(stored) else None


def resolve_device_id(configured: str | None, data_dir: Path,
                      machine_id_path: Path = Path("/etc/machine-id")) -> str:
    """Return the device id, creating ``<data_dir>/device_id`` on first boot."""
    if configured:
        if not VALID_ID.match(configured):
            raise ValueError(f"device.id: {configured!r} may only hold letters, digits, '_' and '-' (max 64)")
        return configured
    id_file = data_dir / ID_FILE
    try:
        stored = id_file.read_text().strip()
        if VALID_ID.match(stored):
            return stored
    except FileNotFoundError:
        pass
    new_id = derive_from_machine_id(machine_id_path) or "facepro-" + uuid.uuid4().hex[:12]
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = id_file.with_suffix(".tmp")
    tmp.write_text(new_id + "\n")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, id_file)
    return new_id
